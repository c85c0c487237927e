"""Which containers use a volume: the Mounts of their records."""


def _names(record):
    for m in record.get("Mounts") or ():
        if isinstance(m, dict) and m.get("Type") == "volume" and isinstance(m.get("Name"), str):
            yield m["Name"]


def users(paths, name):
    """IDs of the containers (with a record) whose Mounts name volume name."""
    from bocker.runtime import records

    return [r["Id"] for r in records.list_all(paths) if name in set(_names(r))]


def all_used(paths):
    """The names of every volume some container's record mounts."""
    from bocker.runtime import records

    return {n for r in records.list_all(paths) for n in _names(r)}
