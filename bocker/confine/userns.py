"""--userns=auto: a container whose root is root only in its own user
namespace.

Each such container gets a block of SIZE host uids and SIZE host gids:
its uid 0 is the block's first host uid, an unprivileged user on the host.
The blocks come from the lines for user `bocker` in /etc/subuid and
/etc/subgid when both files have some, else from a built-in pool of
POOL_BLOCKS blocks from POOL_START up (inside the range systemd leaves to
container id blocks, far above ordinary users).

An allocation is a symlink <root>/userns/<first host uid> -> <container id>:
symlink(2) creates it atomically or fails with EEXIST, so concurrent
starts never share a block and no lock is needed (the address leases of
network.py work the same way).  A container keeps its block from create
to rm, across stops and starts; the record holds the maps.

The rootfs snapshot is not chowned: the parent hands the child an
idmapped mount of it (native.idmapped_tree), so files keep the image's
ownership on disk and `commit` snapshots them as they are.
"""
import os

from bocker import claims
from bocker.errors import BockerError, InvalidArgument
from bocker.kernel import native

SIZE = 65536
POOL_START = 1 << 27          # 134217728
POOL_BLOCKS = 4096            # up to 402653184, below systemd's 0x6fffffff
SUBID_USER = "bocker"
MODES = ("auto", "host")


class PoolFull(BockerError):
    """Every block of the pool belongs to a container."""


def mode(value=None):
    """The --userns value in force: value, else $BOCKER_USERNS, else host
    ("" means host, as in Docker)."""
    if value is None:
        value = os.environ.get("BOCKER_USERNS", "")
    value = value or "host"
    if value not in MODES:
        raise InvalidArgument(f"invalid --userns '{value}': use auto or host")
    return value


def check(req):
    """Refuse what cannot work in a user namespace, as Docker does."""
    if req.userns != "auto":
        return
    if req.privileged:
        raise BockerError("--privileged is incompatible with --userns=auto: "
                          "add --userns=host")
    if req.network == "host":
        raise BockerError("--network host is incompatible with --userns=auto (sysfs and "
                          "the host's interfaces belong to the host): add --userns=host")


# ------------------------------------------------------------------ pool

def parse_subid(text, user=SUBID_USER):
    """(start, count) of each `user:start:count` line of an /etc/subuid
    style text; malformed lines are skipped."""
    out = []
    for line in text.splitlines():
        fields = line.strip().split(":")
        if len(fields) != 3 or fields[0] != user:
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if start >= 0 and count > 0:
            out.append((start, count))
    return out


def blocks(ranges):
    """First ids of the whole SIZE-blocks inside ranges, in order, each
    once.  A block must not hold host id 0 (that would make the
    container's root the host's) nor 2**32-1 (no valid id)."""
    out, seen = [], set()
    for start, count in ranges:
        base = start
        while base + SIZE <= min(start + count, (1 << 32) - 1):
            if base > 0 and base not in seen:
                seen.add(base)
                out.append(base)
            base += SIZE
    return out


class Blocks:
    """The (first host uid, first host gid) pairs a container may get: the
    i-th uid block with the i-th gid block.  Lazy, so the built-in pool of
    thousands costs nothing to make: a start looks at the first few."""

    def __init__(self, uids, gids):
        self.uids, self.gids = uids, gids

    def __len__(self):
        return min(len(self.uids), len(self.gids))

    def __iter__(self):
        return zip(self.uids, self.gids)


def pool(subuid="/etc/subuid", subgid="/etc/subgid"):
    """The Blocks a container may get: from the files' `bocker` lines when
    both have some, else the built-in pool."""
    found = []
    for path in (subuid, subgid):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # no such file: the usual case, so kept cheap
            found.append([])
            continue
        try:
            text = os.read(fd, 1 << 20).decode(errors="replace")
        finally:
            os.close(fd)
        found.append(blocks(parse_subid(text)))
    if found[0] and found[1]:
        return Blocks(*found)
    builtin = range(POOL_START, POOL_START + POOL_BLOCKS * SIZE, SIZE)
    return Blocks(builtin, builtin)


def choose(candidates, taken):
    """The first (uid, gid) block of candidates whose uid is not taken, or
    None."""
    for block in candidates:
        if block[0] not in taken:
            return block
    return None


# ----------------------------------------------------------- allocations

def allocations(directory):
    """{first host uid: container id} of every allocation in directory."""
    return {int(name): owner for name, owner in claims.claims(directory).items()
            if name.isdigit()}


def allocate(directory, container_id, candidates, existing=set):
    """Give container_id a block of candidates; returns (uid, gid).

    An allocation is a claim (bocker/claims.py) named by the block's first
    host uid.  existing() returns the IDs of every container that exists:
    only when the pool is full, allocations of any other (left by a crash)
    are dropped and the pick is tried once more.
    """
    for attempt in (0, 1):
        taken = {str(uid) for uid in allocations(directory)}
        blocks = {}

        def names():  # lazily: the built-in pool is large
            for block in candidates:
                blocks[str(block[0])] = block
                yield str(block[0])

        name = claims.claim_first(directory, container_id, names(), taken)
        if name is not None:
            return blocks[name]
        if attempt == 0:
            prune(directory, set(existing()) | {container_id})
    raise PoolFull(f"no free user namespace block: all {len(candidates)} are allocated "
                   f"(allocations in {directory})")


def release(directory, container_id):
    """Drop the allocation of container_id; a no-op if it has none."""
    claims.release(directory, container_id)


def prune(directory, keep):
    """Drop every allocation whose container ID is not in keep; returns
    {uid: container id} of those dropped."""
    return {int(name): owner for name, owner in claims.prune(directory, keep).items()
            if name.isdigit()}


# ------------------------------------------------------------ the start

def id_map(host_base):
    """The record's form of one block: Docker's IDMap fields."""
    return [{"ContainerID": 0, "HostID": host_base, "Size": SIZE}]


def map_text(idmap):
    """/proc/PID/uid_map text for a record's map."""
    return "".join(f"{m['ContainerID']} {m['HostID']} {m['Size']}\n" for m in idmap)


def write_map(pid, which, idmap):
    """Write /proc/pid/<which> (uid_map or gid_map) in one write(2), as
    the kernel requires.  We are root in the parent namespace, so no
    setgroups "deny" is needed first."""
    path = f"/proc/{pid}/{which}"
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, map_text(idmap).encode())
    except OSError as e:
        raise OSError(e.errno, f"write {path}: {os.strerror(e.errno)}") from None
    finally:
        os.close(fd)


def hand_over(pid, rootfs, host_config, sock, attrs=native.MOUNT_ATTR_NODEV):
    """The parent's half of a user namespace start: map the child's ids,
    then send it, over sock, the idmapped tree of rootfs that it attaches
    as its root (STEP_USERNS in csrc/child.c).  Closes sock."""
    try:
        write_map(pid, "uid_map", host_config["UidMap"])
        write_map(pid, "gid_map", host_config["GidMap"])
        ns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            tree = native.idmapped_tree(rootfs, ns, attrs)
        finally:
            os.close(ns)
        try:
            native.send_fd(sock, tree)
        finally:
            os.close(tree)
    finally:
        os.close(sock)


def chown_files(mounts, host_config):
    """Give the container's root the files bocker made for it (hosts,
    hostname, resolv.conf), as Docker does under userns-remap; everything
    else of the host stays owned by ids the namespace does not map."""
    uid, gid = host_config["UidMap"][0]["HostID"], host_config["GidMap"][0]["HostID"]
    for m in mounts:
        os.chown(m.source, uid, gid)
