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
        match = [f for f in _db(rootfs, "etc/passwd") if len(f) >= 4 and f[0] == user]
        if not match:
            raise BuildError(f"--chown: unable to find user {user}: no matching entries "
                             f"in passwd file")
        uid, gid = int(match[0][2]), int(match[0][3])
    if group:
        number = _number(group)
        if number is not None:
            gid = number
        else:
            match = [f for f in _db(rootfs, "etc/group") if len(f) >= 3 and f[0] == group]
            if not match:
                raise BuildError(f"--chown: unable to find group {group}: no matching "
                                 f"entries in group file")
            gid = int(match[0][2])
    if uid > MAX_ID or gid > MAX_ID:
        raise BuildError(f"--chown: {spec}: id out of range")
    return uid, gid
