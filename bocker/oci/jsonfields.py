"""Type and range checks for one field of a parsed JSON document (the
OCI config.json, an exec process file), each failing with ONE line that
names the field: "config.json: mounts[3].destination: must be a string".

A field's name (`where`) carries its document: "config.json: mounts[3]";
item(where, i) and key(where, k) name what is inside it."""
import json
import sys

from bocker.errors import InvalidArgument

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
PATH_MAX = 4096
MAX_STRING = 1 << 20      # any one string; the whole document is bounded anyway
MAX_LIST = 4096           # mounts, devices, paths, rules: far beyond any real config
MAX_ARGV = 1 << 16        # args and env entries


def key(where, name):
    """The name of member `name` of the object `where`."""
    return f"{where}.{name}"


def item(where, index):
    """The name of entry `index` of the array `where`."""
    return f"{where}[{index}]"


def fail(where, message):
    """Raise the one-line error for a field."""
    raise InvalidArgument(f"{where}: {message}")


def obj(value, where):
    """A JSON object (dict)."""
    if not isinstance(value, dict):
        fail(where, "must be an object")
    return value


def boolean(value, where):
    """true or false (JSON has no other booleans; 0 and 1 are numbers)."""
    if not isinstance(value, bool):
        fail(where, "must be true or false")
    return value


def integer(value, where, low, high):
    """An integer from low to high (a float or a bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(where, f"must be an integer from {low} to {high}")
    if not low <= value <= high:
        fail(where, f"must be an integer from {low} to {high}, not {value}")
    return value


def string(value, where, max_len=MAX_STRING, empty=True):
    """A string without NUL (the kernel would cut it there) of at most
    max_len bytes (UTF-8)."""
    if not isinstance(value, str):
        fail(where, "must be a string")
    if "\0" in value:
        fail(where, "must not contain a NUL character")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:   # a lone surrogate from a \udXXX escape
        fail(where, "must be valid UTF-8")
    if size > max_len:
        fail(where, f"longer than {max_len} bytes")
    if not empty and not value:
        fail(where, "must not be empty")
    return value


def abs_path(value, where):
    """An absolute path (a string starting with /), at most PATH_MAX."""
    string(value, where, PATH_MAX, empty=False)
    if not value.startswith("/"):
        fail(where, f"must be an absolute path, not {value[:60]!r}")
    return value


def array(value, where, limit=MAX_LIST):
    """A JSON array of at most limit entries."""
    if not isinstance(value, list):
        fail(where, "must be an array")
    if len(value) > limit:
        fail(where, f"more than {limit} entries")
    return value


def strings(value, where, limit=MAX_LIST, max_len=MAX_STRING):
    """An array of strings (each checked by string())."""
    return [string(s, item(where, i), max_len) for i, s in enumerate(array(value, where, limit))]


def string_map(value, where, limit=MAX_LIST):
    """An object whose values are all strings (annotations, sysctl)."""
    obj(value, where)
    if len(value) > limit:
        fail(where, f"more than {limit} entries")
    for k, v in value.items():
        string(k, map_key(where, k), PATH_MAX, empty=False)
        string(v, map_key(where, k))
    return value


def unknown_keys(value, known, where, warnings):
    """A warning for every member of the object the parser does not know
    (never silently dropped: the config asked for something)."""
    for k in sorted(set(value) - set(known)):
        warnings.append(f"{where}: unknown member {k[:60]!r} is not applied")


def member(value, name, default):
    """value[name], or default if it is missing or null (Go writes null for
    what it leaves unset; a present but wrong value is the caller's check)."""
    got = value.get(name)
    return default if got is None else got


def map_key(where, name):
    """The name of the member `name` of a free-form object (annotations,
    sysctl): quoted, since it is the config's text, not a field name."""
    return f"{where}[{name[:60]!r}]"


def read_object_file(path, flag, limit):
    """A command line's JSON file (`--process FILE`, `--resources FILE`;
    '-' is stdin), read with a bound: a JSON object, else one line naming
    the flag."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(limit + 1)   # to EOF or the bound
        else:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
    except OSError as e:
        raise InvalidArgument(f"{flag} {path}: {e.strerror}") from None
    if len(data) > limit:
        raise InvalidArgument(f"{flag} {path}: larger than {limit} bytes")
    try:
        obj = json.loads(data)
    except ValueError as e:
        raise InvalidArgument(f"{flag} {path}: not JSON ({e})") from None
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{flag} {path}: must be a JSON object")
    return obj
