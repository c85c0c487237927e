"""The rootfs pool: writable snapshots of an image made ahead, off the
start path, and handed to a create by one rename.

<root>/pool/ (Paths.pool, 0700):
    <image_id>.<pid>.<n>   a whole entry: a writable snapshot of the image's
                           rootfs, made (and prewarmed) by process pid
    .<pid>.<n>             an entry being made, or one claimed for deletion
    .owner.<pid>           pid's /proc/PID/stat start time: written before
                           pid makes anything, removed after its last entry

An entry is made under a temporary name and renamed into place only when
whole, so a taker never sees a half-made one; a take is a rename of the
entry to the container's rootfs path, so of two takers one wins.  After the
rename the taker checks the snapshot's parent is the image's rootfs as it
is now (an image replaced in place by `commit`, or removed, keeps its ID
for a moment): no entry is used for other content or after its image is gone.

Who fills: the server's filler (bocker/server/filler.py); the server's
workers take entries.  A worker tells the filler which images and commands
it used through a pipe the server opens (open_channel) before it forks the
filler and its workers, so each inherits its end (module globals,
O_CLOEXEC, O_NONBLOCK, lines under PIPE_BUF so each write is whole);
after_command() drains the read end.  No environment variable is needed,
since a worker is a fork, not an exec.  A process with no such channel
keeps its notes to itself (LocalPool, for API users and the benchmark).

Prewarm: a snapshot's inodes share no page cache with the image's, so the
first execve of a container reads its binary from disk.  An entry's files a
start will exec (the image's command resolved with its PATH, its ELF
interpreter, the commands note_use saw) are read once when it is made.
"""
import collections
import itertools
import os
import time

from bocker import ids, trace

TARGET = 2        # entries kept ready per wanted image
IMAGES = 4        # images a pool keeps entries of (the most recently used)
EXECS = 3         # exec paths remembered per image
FILE_LIMIT = 64 << 20     # a larger file is not prewarmed
PATH_DIRS = 32            # PATH entries searched at most
LINE_MAX = 4000           # under PIPE_BUF: a note is written whole or not at all
OWNER = ".owner."


# ------------------------------------------------------------ names

def entry_name(image_id, pid, n):
    """The name of pid's n-th entry of image_id."""
    return f"{image_id}.{pid}.{n}"


def _number(text):
    # a plain decimal, as str(int) writes it: no sign, space or leading zero
    return int(text) if text.isascii() and text.isdigit() and str(int(text)) == text else None


def parse_entry(name):
    """(image_id, pid, n) of a whole entry's name; None for any other name."""
    parts = name.split(".")
    if len(parts) != 3 or not ids.is_id(parts[0], "img"):
        return None
    pid, n = _number(parts[1]), _number(parts[2])
    if not pid or n is None:
        return None
    return parts[0], pid, n


def parse_transient(name):
    """The pid of an entry being made or deleted (`.<pid>.<n>`); else None."""
    parts = name.split(".")
    if len(parts) != 3 or parts[0] or _number(parts[2]) is None:
        return None
    return _number(parts[1]) or None


def _owner_pid(name):
    return _number(name[len(OWNER):]) if name.startswith(OWNER) else None


_count = itertools.count()


def _transient(pid=None):
    return f".{pid or os.getpid()}.{next(_count)}"


# ------------------------------------------------------------ take

def take_rootfs(paths, image_id, dest):
    """Rename an entry of image_id to dest (a writable subvolume of the
    image's content); False if there is none.  Never raises."""
    if not isinstance(image_id, str) or not ids.is_id(image_id, "img"):
        return False
    with trace.span("pool take rootfs", image=image_id, target=dest) as sp:
        _tell("W", paths.root, image_id)
        try:
            names = os.listdir(paths.pool)
        except OSError:
            return False
        prefix = image_id + "."
        for name in names:
            if not name.startswith(prefix) or parse_entry(name) is None:
                continue
            try:
                os.rename(os.path.join(paths.pool, name), dest)
            except FileNotFoundError:
                continue  # another start took it first
            except OSError:
                return False
            if _of_image(paths, image_id, dest):
                sp.set(name)
                return True
            _delete_quietly(dest)  # made from content the image no longer has
            return False
        return False


def _of_image(paths, image_id, rootfs):
    """True if rootfs is a snapshot of the image's rootfs as it is now."""
    import btrfsutil

    from bocker.image import images

    try:
        image = btrfsutil.subvolume_info(images.rootfs(paths, image_id))
        return btrfsutil.subvolume_info(rootfs).parent_uuid == image.uuid
    except Exception:  # noqa: BLE001 - any doubt: not this image's
        return False


def _delete_quietly(path):
    from bocker.kernel import store

    try:
        store.delete(path)
    except OSError:
        pass


# ------------------------------------------------------------ notes

def note_use(paths, image_id, exec_path):
    """Tell whoever fills this root's pool that a start of image_id execs
    exec_path (a path, or a name looked up in the image's PATH).  Cheap
    (one write), never raises."""
    if isinstance(exec_path, str) and exec_path and "\0" not in exec_path:
        _tell("U", paths.root, image_id, exec_path)


def _tell(kind, root, image_id, arg=""):
    try:
        if _chan_w >= 0 and os.getpid() != _chan_pid:  # a server's worker: its filler fills
            line = f"{kind}\t{root}\t{image_id}\t{arg}\n".encode("utf-8", "surrogateescape")
            if len(line) <= LINE_MAX:
                os.write(_chan_w, line)
        elif root in _pools:
            _pools[root].note(kind, image_id, arg)
    except Exception:  # noqa: BLE001 - a hint lost (pipe full, closed): no harm
        pass


def open_channel(low=0):
    """The server's: open the notes pipe its workers write to (they
    inherit it at fork) and its filler reads; its fds are moved to low or
    above, so that a worker under a client's small RLIMIT_NOFILE has its
    low fds free as a bocker-py would.  Returns the read end."""
    global _chan_pid, _chan_r, _chan_w
    r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    _chan_pid, _chan_r, _chan_w = os.getpid(), _moved(r, low), _moved(w, low)
    return _chan_r


def _moved(fd, low):
    import fcntl

    if fd >= low:
        return fd
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    finally:
        os.close(fd)


# no channel unless a server opened one (a bocker-py or API process fills
# its own LocalPool, if it has one, directly)
_chan_pid, _chan_r, _chan_w = None, -1, -1
_pending = b""
_pools = {}  # root -> LocalPool of this process


def after_command():
    """The server's hook after each worker exits: take in what workers
    told (images used, commands run).  Cheap, never raises."""
    global _pending
    if _chan_r < 0:
        return
    try:
        while len(_pending) < 1 << 20:
            chunk = os.read(_chan_r, 65536)
            if not chunk:
                break
            _pending += chunk
    except BlockingIOError:
        pass
    except Exception:  # noqa: BLE001
        return
    lines, _, _pending = _pending.rpartition(b"\n")
    for line in lines.split(b"\n") if lines else ():
        parts = line.decode("utf-8", "surrogateescape").split("\t", 3)
        if len(parts) != 4 or parts[0] not in ("W", "U") or not os.path.isabs(parts[1]) \
                or not ids.is_id(parts[2], "img"):
            continue
        try:
            _pool_of(parts[1]).note(parts[0], parts[2], parts[3])
        except Exception:  # noqa: BLE001
            pass


def _pool_of(root):
    if root not in _pools:
        from bocker.state import Paths

        LocalPool(Paths(root))
    return _pools[root]


def refill_some(budget_ms=20):
    """Make entries for the images this process was told of, for about
    budget_ms; returns how many were made.  Never raises."""
    deadline = time.monotonic() + budget_ms / 1000
    made = 0
    for pool in list(_pools.values()):  # (none: nothing to do, at once)
        try:
            made += pool.refill_some(max(0.0, (deadline - time.monotonic()) * 1000))
        except Exception:  # noqa: BLE001 - a root torn down, a full disk: try later
            pass
    return made


def drain_all():
    """Remove every entry this process made, in every root."""
    for pool in list(_pools.values()):
        try:
            pool.drain_all()
        except Exception:  # noqa: BLE001
            pass


# ------------------------------------------------------------ filling

class LocalPool:
    """The entries this process keeps for one root: images it was told of
    (note, want), refilled when asked (refill_some), removed by drain_all."""

    def __init__(self, paths):
        self.paths = paths
        self.wanted = collections.OrderedDict()  # image_id -> deque of exec paths
        self._owner_written = False
        _pools[paths.root] = self

    def want(self, image_id):
        """Keep entries of image_id (the most recent IMAGES images)."""
        self.wanted[image_id] = self.wanted.pop(image_id, None) or collections.deque(maxlen=EXECS)
        while len(self.wanted) > IMAGES:
            self.wanted.popitem(last=False)

    def note(self, kind, image_id, exec_path=""):
        """A note a start made: W (image wanted) or U (it ran exec_path)."""
        self.want(image_id)
        execs = self.wanted[image_id]
        if kind == "U" and exec_path not in execs and len(exec_path) < 4096:
            execs.append(exec_path)

    def note_use(self, image_id, exec_path):
        """As the module's note_use, for this process's own starts."""
        self.note("U", image_id, exec_path)

    def take_rootfs(self, image_id, dest):
        """As the module's take_rootfs."""
        return take_rootfs(self.paths, image_id, dest)

    def refill_some(self, budget_ms=None):
        """Sweep stale entries, then make entries of the wanted images up
        to TARGET each, until budget_ms is spent (None: all of them, now;
        one entry, about 2 ms, is made whatever the budget); returns how
        many were made."""
        deadline = None if budget_ms is None else time.monotonic() + budget_ms / 1000
        me = os.getpid()
        mine = collections.Counter()
        for name in self._sweep():
            entry = parse_entry(name)
            if entry and entry[1] == me:
                mine[entry[0]] += 1
        made = 0
        for image_id in reversed(list(self.wanted)):  # most recent first
            while mine[image_id] < TARGET:
                if made and deadline is not None and time.monotonic() >= deadline:
                    return made  # (the first always: each call makes progress)
                if not self._make(image_id):
                    self.wanted.pop(image_id, None)  # gone, or not an image here
                    break
                mine[image_id] += 1
                made += 1
        return made

    def drain_all(self):
        """Remove every entry (and half-made one) this process owns here."""
        me = os.getpid()
        for name in _listdir(self.paths.pool):
            entry = parse_entry(name)
            if (entry and entry[1] == me) or parse_transient(name) == me:
                _remove(self.paths, name)
        if self._owner_written:
            _unlink(os.path.join(self.paths.pool, f"{OWNER}{me}"))
            self._owner_written = False

    def _sweep(self):
        """Remove entries of dead owners and of removed images; returns
        the names left."""
        names, left, dead = _listdir(self.paths.pool), [], {}
        me = os.getpid()

        def gone(pid):
            if pid not in dead:
                dead[pid] = pid != me and not _owner_alive(self.paths, pid)
            return dead[pid]

        for name in names:
            entry = parse_entry(name)
            pid = entry[1] if entry else parse_transient(name)
            if pid and (gone(pid) or (entry and not _image_exists(self.paths, entry[0]))):
                _remove(self.paths, name)
            elif pid:
                left.append(name)
        for name in names:  # the owner files last: they say who the rest are
            pid = _owner_pid(name)
            if pid and gone(pid):
                _unlink(os.path.join(self.paths.pool, name))
        return left

    def _make(self, image_id):
        """One entry of image_id, prewarmed, renamed into place; False if
        the image is not here."""
        import btrfsutil

        from bocker.errors import BockerError
        from bocker.image import images

        try:
            config = images.load(self.paths, image_id).get("config") or {}
        except BockerError:
            return False
        from bocker.kernel import store

        if not os.path.isdir(self.paths.pool):
            # a root being torn down (or not set up): no pool directory
            # left behind on the host's filesystem
            if not store.is_btrfs(self.paths.images):
                return False
            os.makedirs(self.paths.pool, 0o700, exist_ok=True)
        self._write_owner()
        tmp = os.path.join(self.paths.pool, _transient())
        try:
            store.snapshot(images.rootfs(self.paths, image_id), tmp)
        except btrfsutil.BtrfsUtilError:
            return False
        try:
            if PREWARM:
                prewarm(tmp, config, list(self.wanted.get(image_id) or ()))
            os.rename(tmp, os.path.join(self.paths.pool,
                                        entry_name(image_id, os.getpid(), next(_count))))
        except BaseException:
            _delete_quietly(tmp)
            raise
        return True

    def _write_owner(self):
        if self._owner_written:
            return
        from bocker import state
        from bocker.runtime import records

        me = os.getpid()
        path = os.path.join(self.paths.pool, f"{OWNER}{me}")
        # a dead process of the same PID left entries: theirs are stale,
        # and names of ours could meet them
        for name in _listdir(self.paths.pool):
            entry = parse_entry(name)
            if (entry and entry[1] == me) or parse_transient(name) == me:
                _remove(self.paths, name)
        state.write_json(path, records.proc_start_time(me), durable=False)
        self._owner_written = True


def _owner_alive(paths, pid):
    from bocker import state
    from bocker.runtime import records

    try:
        start = state.read_json(os.path.join(paths.pool, f"{OWNER}{pid}"))
    except (OSError, ValueError):
        return False  # written before any entry, removed after the last: gone
    return isinstance(start, int) and records.alive(pid, start)


def _image_exists(paths, image_id):
    return os.path.exists(os.path.join(paths.image(image_id), "image.json"))


def _listdir(directory):
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _remove(paths, name):
    """Claim name by renaming it (a taker may win: then it is theirs),
    then delete it."""
    claimed = os.path.join(paths.pool, _transient())
    try:
        os.rename(os.path.join(paths.pool, name), claimed)
    except FileNotFoundError:
        return
    _delete_quietly(claimed)


def drop_image(paths, image_id):
    """Remove every entry of image_id, whoever made it (rmi, before the
    image goes)."""
    for name in _listdir(paths.pool):
        entry = parse_entry(name)
        if entry and entry[0] == image_id:
            _remove(paths, name)


# ------------------------------------------------------------ prewarm

PREWARM = True


def prewarm(rootfs, config, exec_paths=()):
    """Read into the page cache the files a start of rootfs will exec: the
    image's command and exec_paths, each looked up in the image's PATH
    inside rootfs (never out of it), and their ELF interpreters.  Returns
    the paths read; what cannot be read is skipped."""
    from bocker.kernel import rootfs_read

    root = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    done = []
    try:
        search = _image_path(config)
        for name in dict.fromkeys([_command(config), *exec_paths]):
            for path in _candidates(name, search, config.get("WorkingDir")):
                interp = _read_cached(rootfs_read, root, path)
                if interp is False:
                    continue
                done.append(path)
                if interp and _read_cached(rootfs_read, root, interp) is not False:
                    done.append(interp)
                break
    finally:
        os.close(root)
    return done


def _command(config):
    """argv[0] of the image's default command, or None."""
    from bocker.runtime import spec

    try:
        argv0 = spec.build_argv((), config)[0]
    except Exception:  # noqa: BLE001 - a hostile config: nothing to warm
        return None
    return argv0 if isinstance(argv0, str) else None


def _image_path(config):
    from bocker.runtime import spec

    env = config.get("Env")
    for item in env if isinstance(env, list) else ():
        if isinstance(item, str) and item.startswith("PATH="):
            return item[5:]
    return spec.DEFAULT_PATH


def _candidates(name, search, workdir):
    """Where the exec of name would look, in order (as execvp does)."""
    if not isinstance(name, str) or not name or "\0" in name or len(name) > 4096:
        return []
    if "/" in name:
        base = workdir if isinstance(workdir, str) and workdir.startswith("/") else "/"
        return [os.path.join(base, name)]
    return [os.path.join(d, name) for d in search.split(":")[:PATH_DIRS] if d.startswith("/")]


def _read_cached(rootfs_read, root, path):
    """Read the regular executable file path (inside root) once; returns
    its ELF interpreter's path, None if it has none, False if path is not
    an executable regular file of at most FILE_LIMIT bytes."""
    from bocker.errors import BockerError

    try:
        fd = rootfs_read.open_regular(root, path)
    except (OSError, BockerError):
        return False
    try:
        st = os.fstat(fd)
        if not st.st_mode & 0o111 or st.st_size > FILE_LIMIT:
            return False
        interp = elf_interp(lambda off, size: os.pread(fd, size, off))
        buf, offset = bytearray(1 << 20), 0
        while offset < st.st_size:
            got = os.preadv(fd, [buf], offset)
            if not got:
                break
            offset += got
        return interp
    except OSError:
        return False
    finally:
        os.close(fd)


PT_INTERP = 3


def elf_interp(read_at):
    """The PT_INTERP path of an ELF file (read_at(offset, size) -> bytes),
    None if it is not ELF, static, or its headers are out of bounds."""
    import struct

    head = read_at(0, 64)
    if len(head) < 52 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) \
            or head[5] not in (1, 2):
        return None
    wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
    if wide and len(head) < 64:
        return None
    phoff, = struct.unpack_from(order + ("Q" if wide else "I"), head, 32 if wide else 28)
    phentsize, phnum = struct.unpack_from(order + "HH", head, 54 if wide else 42)
    need = 56 if wide else 32
    if not need <= phentsize <= 256 or phnum > 64 or phoff > FILE_LIMIT:
        return None
    table = read_at(phoff, phentsize * phnum)
    for at in range(0, phentsize * phnum, phentsize):
        if at + need > len(table):
            break
        if wide:
            ptype, _, offset, _, _, size = struct.unpack_from(order + "IIQQQQ", table, at)
        else:
            ptype, offset, _, _, size = struct.unpack_from(order + "IIIII", table, at)
        if ptype == PT_INTERP:
            if not 1 < size <= 4096 or offset > FILE_LIMIT:
                return None
            path = read_at(offset, size).split(b"\0", 1)[0]
            return os.fsdecode(path) if path.startswith(b"/") else None
    return None
