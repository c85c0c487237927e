"""Docker's `run --pull`: the image a run or create uses, pulled first
when the policy says so (missing: only if it is not here; always; never).

Only a reference can be pulled: an img_ ID or an ID prefix that matches
nothing stays a missing image.  With a platform, a local image of another
os/architecture counts as missing, as it does for Docker.
"""
from bocker.errors import InvalidArgument, NoSuchImage
from bocker.image import images

POLICIES = ("missing", "always", "never")


def check_policy(policy):
    """policy ('missing' when None), or InvalidArgument for another word."""
    policy = policy or "missing"
    if policy not in POLICIES:
        raise InvalidArgument(f"invalid pull option: '{policy}': must be one of "
                              f"{', '.join(POLICIES)}")
    return policy


def local_image(paths, ref, platform=None):
    """The ID of the local image ref names (and of platform, if given), or None."""
    try:
        image_id = images.resolve(paths, ref)
    except NoSuchImage:
        return None
    if platform and not _matches(images.load(paths, image_id), platform):
        return None
    return image_id


def _matches(record, platform):
    """True if an image record is of platform 'os/arch[/variant]'; an image
    that does not say (made by init, commit, import) matches any."""
    from bocker.image import platforms

    want = platforms.parse_platform(platform)
    have = (record.get("os"), record.get("architecture"), record.get("variant"))
    if not have[0] and not have[1]:
        return True
    return all(w is None or h == w for w, h in zip(want, have))


def ensure(paths, ref, policy=None, *, platform=None, progress=None, say=None):
    """The ID of the image a run of ref uses under policy; pulls it (with
    progress, an install.Progress, or a function making one: called only
    if a pull happens, so a run of a local image imports no printer)
    when the policy says so.  say(text)
    gets Docker's "Unable to find image ... locally" line first.  Raises
    NoSuchImage (policy never, or ref not a pullable reference), or the
    pull's own error."""
    policy = check_policy(policy)
    if ref.startswith("img_"):  # an ID names a local image: nothing to pull, whatever the policy
        return images.resolve(paths, ref)
    if policy != "always":
        found = local_image(paths, ref, platform)
        if found or policy == "never":
            if found:
                return found
            raise NoSuchImage(ref)
    if not _pullable(ref):
        raise NoSuchImage(ref)
    from bocker.image import pull
    from bocker.kernel import store

    store.require_btrfs(paths.root)  # a root not set up says so, not a registry's error
    if policy == "missing" and say:
        say(f"Unable to find image '{ref}' locally")
    if callable(progress):
        progress = progress()
    return pull.pull(paths, ref, platform=platform, progress=progress).image_id


def _pullable(ref):
    from bocker.errors import BockerError
    from bocker.image import reference

    try:
        reference.parse(ref)
    except BockerError:
        return False
    return True
