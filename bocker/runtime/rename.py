"""`bocker rename OLD NEW`: a container's name moved to a new claim
(runtime/names.py), running or not.  The new name is claimed first, so
of two renames to one name exactly one wins; the record is rewritten
under the container's lock; only then is the old claim dropped."""
from bocker import events, ids
from bocker.errors import BockerError, Conflict, InvalidArgument, NoSuchContainer
from bocker.runtime import names, records


def rename(paths, ref, new_name):
    """Give the container ref names the name new_name; returns its ID.
    Conflict if another container holds new_name."""
    ids.check_container_name(new_name)
    cid = records.resolve(paths, ref)
    old = records.read_stored(paths, cid)["Name"]
    if old == new_name:
        raise InvalidArgument("Renaming a container with the same name as its current name")
    try:
        names.claim(paths, new_name, cid)
    except Conflict as e:  # Docker's rename fails with 1 (125 is run's)
        raise BockerError(str(e)) from None
    try:
        with records.locked(paths, cid) as here:
            if not here:
                raise NoSuchContainer(ref)
            record = records.read_stored(paths, cid)
            old = record["Name"]
            record["Name"] = new_name
            records.save(paths, record)
    except BaseException:
        names.release(paths, cid, new_name)
        raise
    if old != cid:  # a container without a name of its own had its ID as name
        names.release(paths, cid, old)
    events.container(paths, record, "rename", oldName="/" + old)
    return cid
