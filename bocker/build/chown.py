"""COPY/ADD --chown=user[:group]: names or numbers resolved against the
DESTINATION rootfs's /etc/passwd and /etc/group, as BuildKit does.

The files are the image's (hostile): they are read by
bocker.runtime.spec._read_db, resolved inside the rootfs (an /etc symlink
cannot reach the host's files), regular files only, bounded.

BuildKit's rules: a user name takes its passwd entry's uid and primary
gid; a number is used as is, its gid the same number (no lookup, so a
uid the image does not know is fine); a group (name or number) replaces
the gid.  A name the files do not hold is an error.
"""
from bocker.build.errors import BuildError
from bocker.errors import BockerError

MAX_ID = 2 ** 32 - 2   # (uid_t)-1 means "unchanged" to the kernel


def _number(text):
    """text as an id if it is a decimal id in range, else None."""
    if text.isascii() and text.isdigit():
        value = int(text)
        if value > MAX_ID:
            raise BuildError(f"--chown: id {text} out of range")
        return value
    return None


def _db(rootfs, rel):
    from bocker.runtime.spec import _read_db

    try:
        return _read_db(rootfs, rel)
    except BockerError as e:
        raise BuildError(f"--chown: {e}") from None


def _lookup(rootfs, rel, name, what, fields):
    """The numeric fields (e.g. (2, 3): uid and gid) of name's entry in
    the rootfs's rel; its ids are the image's text, checked here."""
    match = [f for f in _db(rootfs, rel) if len(f) > max(fields) and f[0] == name]
    if not match:
        raise BuildError(f"--chown: unable to find {what} {name}: no matching entries "
                         f"in {rel.rsplit('/', 1)[-1]} file")
    ids = [_number(match[0][i]) for i in fields]
    if None in ids:
        raise BuildError(f"--chown: {what} {name} has no numeric id in {rel}")
    return ids


def resolve(rootfs, spec):
    """(uid, gid) of a --chown value in the rootfs at path rootfs."""
    if not isinstance(spec, str) or not spec or spec.count(":") > 1:
        raise BuildError(f"--chown: invalid user '{spec}': want user[:group]")
    user, _, group = spec.partition(":")
    if not user or (":" in spec and not group):
        raise BuildError(f"--chown: invalid user '{spec}': want user[:group]")
    uid = _number(user)
    if uid is not None:
        gid = uid
    else:
        uid, gid = _lookup(rootfs, "etc/passwd", user, "user", (2, 3))
    if group:
        gid = _number(group)
        if gid is None:
            (gid,) = _lookup(rootfs, "etc/group", group, "group", (2,))
    return uid, gid
