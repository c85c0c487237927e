"""Image names: `tag` adds one (taking it from any image that had it, as
Docker's names move), untag drops one; both under the images' lock."""
from bocker import ids, state
from bocker.errors import InvalidArgument
from bocker.image import images, names


def check_name(text):
    """NAME[:TAG] normalized ('busybox' -> 'busybox:latest'); InvalidArgument
    unless it is Docker's grammar (lowercase repository, a valid tag)."""
    if not isinstance(text, str) or not text or len(text) > 255 or "@" in text:
        raise InvalidArgument(f"invalid reference format: '{text}'")
    name, tag = ids.split_name(text)
    if not names.is_name(name) or not names.is_tag(tag):
        raise InvalidArgument(f"invalid reference format: '{text}'")
    return f"{name}:{tag}"


def tag(paths, source, target):
    """Give the image source names the name target too; returns (ID, name)."""
    name = check_name(target)
    image_id = images.resolve(paths, source)
    with images.locked(paths):
        record = images.load(paths, image_id)
        if name not in record["names"]:
            record["names"] = [*record["names"], name]
            save(paths, record)
        images._take_names(paths, [name], image_id)
    emit(paths, "tag", image_id, name)
    return image_id, name


def untag(paths, image_id, name):
    """Drop name from the image image_id (the image stays)."""
    with images.locked(paths):
        record = images.load(paths, image_id)
        record["names"] = [n for n in record["names"] if n != name]
        save(paths, record)
    emit(paths, "untag", image_id, name)


def matched_name(record, ref):
    """The name of record that ref spelled (NAME, NAME:TAG, a registry's
    full form), or None when ref is its ID or an ID prefix."""
    have = record.get("names") or []
    candidates = [ref, f"{ref}:latest", images._familiar(ref)]
    fam = images._familiar(ref)
    if fam:
        candidates.append(f"{fam}:latest")
    return next((c for c in candidates if c and c in have), None)


def save(paths, record):
    """Write an image's record back (call holding images.locked)."""
    state.write_json(images._record_path(paths, record["id"]), record)


def emit(paths, action, image_id, name=None):
    """An image event (tag, untag) for `bocker events`; events.emit never
    fails the command (the log is a side channel)."""
    from bocker import events

    events.emit(paths, "image", action, image_id, {"name": name} if name else {})
