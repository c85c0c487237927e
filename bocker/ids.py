"""IDs, names and references: pure functions, unit-tested without root.

Image IDs are img_ + 12 hex digits, container IDs ps_ + 12 hex digits.
Wherever an ID is asked for, a unique prefix or a NAME[:TAG] works too.
Image names follow Docker's grammar, defined once in bocker.image.names.
"""
import os
import re

from bocker import patterns
from bocker.errors import Ambiguous, InvalidArgument
from bocker.image import names

ID_RE = re.compile(r"^(img|ps)_[0-9a-f]{12}\Z")  # \Z: no trailing newline
CONTAINER_NAME_RE = patterns.lazy(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
CONTAINER_NAME_MAX = 255  # a file name's bound: Docker has none, a name must have one


def new_id(prefix):
    """A fresh random ID such as img_3f2a9c0d1e4b."""
    return f"{prefix}_{os.urandom(6).hex()}"  # not secrets: it imports hashlib (2 ms)


def is_id(text, prefix=None):
    """True for a full ID (of the given prefix, if any)."""
    return bool(ID_RE.match(text)) and (prefix is None or text.startswith(prefix + "_"))


def split_name(ref):
    """Split NAME[:TAG] into (name, tag); the tag defaults to 'latest'.

    A colon followed by a port number inside the registry part is not a
    tag: 'localhost:5000/x' is ('localhost:5000/x', 'latest').
    """
    name, tag = ref, "latest"
    slash, colon = ref.rfind("/"), ref.rfind(":")
    if colon > slash:
        name, tag = ref[:colon], ref[colon + 1:]
    if not names.is_name(name):
        raise InvalidArgument(f"invalid image name '{ref}'")
    if not names.is_tag(tag):
        raise InvalidArgument(f"invalid tag in '{ref}'")
    return name, tag


def normalize_name(ref):
    """NAME[:TAG] with the tag made explicit: 'busybox' -> 'busybox:latest'."""
    name, tag = split_name(ref)
    return f"{name}:{tag}"


def check_container_name(name):
    """Validate a --name for a container (Docker's rules, at most 255
    characters); the message shows the name as repr would, so a control
    character or newline in it stays on the one line."""
    if not isinstance(name, str) or len(name) > CONTAINER_NAME_MAX:
        raise InvalidArgument(f"invalid container name: longer than {CONTAINER_NAME_MAX} "
                              f"characters")
    if not CONTAINER_NAME_RE.match(name) or ID_RE.match(name):
        raise InvalidArgument(f"invalid container name {_quoted(name)}: only "
                              f"[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name


def _quoted(text):
    # 'text' as typed, unless it holds a control character: then repr's escapes
    return f"'{text}'" if text.isprintable() else repr(text)


def resolve(ref, records, not_found):
    """Pick the one record that ref names.

    records maps ID -> set of names.  Exact ID wins, then an exact name,
    then a unique ID prefix (with or without the img_/ps_ part).  Raises
    not_found(ref) or Ambiguous.
    """
    if ref in records:
        return ref
    named = [i for i, names in records.items() if ref in names]
    if not named and ":" not in ref.rpartition("/")[2]:
        named = [i for i, names in records.items() if f"{ref}:latest" in names]
    if len(named) == 1:
        return named[0]
    prefixed = [i for i in records
                if ref and (i.startswith(ref) or i.partition("_")[2].startswith(ref))]
    if len(prefixed) == 1 and not named:
        return prefixed[0]
    if len(named) + len(prefixed) > 1:
        raise Ambiguous(ref, set(named) | set(prefixed))
    raise not_found(ref)
