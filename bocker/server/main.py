"""`bocker-server [SOCKPATH]`: the warm server's loop.

One server per installation (flock on SOCKPATH.lock).  It watches its code
(stale.py), imports every command, freezes the heap for cheap forks, and
then per connection: checks the peer (peer.py), reads the request
(wire.py), forks a worker (worker.py), relays the client's signals to the
worker's process group, and reports how it ended.  It never holds a
container: containers belong to their monitors, and a worker's children
live on as a killed CLI's would.  It exits when idle, on SIGTERM, or once
its code is stale (after its workers are done).
"""
import array
import errno
import gc
import os
import selectors
import signal
import socket
import sys
import time

from bocker.server import address, peer, stale, wire

IDLE_DEFAULT = 600.0
HIGH_FDS = 1000  # the workers' channels to the server sit above a client's small fd limit
SLOTS_PER_ROOT = 4  # network slots the server keeps ready per root (the filler makes them)
REQUEST_TIMEOUT = 10.0  # a client that connects but never sends is dropped
MAX_FDS = 4


def idle_timeout():
    """BOCKER_SERVER_IDLE seconds (default 600): no client, no worker for
    that long and the server exits."""
    try:
        value = float(os.environ.get("BOCKER_SERVER_IDLE", IDLE_DEFAULT))
    except ValueError:
        return IDLE_DEFAULT
    return value if value > 0 else IDLE_DEFAULT


# ------------------------------------------------------------- preloading

# bocker.oci is the other CLI (bocker-oci), never imported by bocker's
# commands; a __main__ module runs a CLI as it is imported
SKIPPED_PACKAGES = ("bocker.oci",)


def preload():
    """Import what any command needs, so a worker imports nothing: click,
    the click group, every command module (app.COMMAND_MODULES) and every
    other module of the package.  A module that fails to import is left
    for the worker to fail on, exactly as bocker-py would."""
    import importlib
    import pkgutil

    import bocker
    from bocker.cli import app

    importlib.import_module("click")  # the 28 ms the server exists to pay once
    names = {f"bocker.cli.{m}" for m in app.COMMAND_MODULES.values()}
    names.update(m.name for m in pkgutil.walk_packages(bocker.__path__, "bocker.",
                                                       onerror=lambda name: None))
    for name in sorted(names):
        if name.endswith(".__main__") or any(name == p or name.startswith(p + ".")
                                             for p in SKIPPED_PACKAGES):
            continue
        try:
            importlib.import_module(name)
        except Exception:
            pass


def _guarded(fn, *args):
    # a pool is an optimisation: its failure must never take the server down
    try:
        return fn(*args)
    except Exception:
        return None


# ------------------------------------------------------------ the server

class Client:
    """One connection and, once forked, its worker."""

    def __init__(self, conn):
        self.conn = conn
        self.pid = None
        self.reaped = False
        self.reading = True
        self.buffer = b""


class Server:
    """The listening socket, its watch, and the clients being served."""

    def __init__(self, sock_path):
        self.sock_path = sock_path
        self.idle = idle_timeout()
        self.selector = selectors.DefaultSelector()
        self.clients = {}  # conn fd -> Client
        self.listener = None
        self.sock_identity = None
        self.lock_fd = -1
        self.watch = None
        self.stopping = False
        self.terminate = False
        self.last_activity = time.monotonic()
        self.pool_channels = []  # (fd, what) the loop also reads: slot requests, the filler
        self.net_pool = self.net_pool_end = None
        self.filler_pid, self.filler = None, None  # filler.py: makes the pools' contents
        self.slots_asked = {}  # root -> slots asked of the filler, not yet received
        self.spare = None      # (pid, channel): a worker forked ahead (worker.spare)
        self.retired = []      # spares let go of, to reap

    # -- start and stop

    def lock(self):
        """Take the single-instance lock; False if another server has it."""
        import fcntl

        directory = os.path.dirname(self.sock_path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise SystemExit(f"bocker-server: {directory} is not ours alone")
        path = address.lock_path(self.sock_path)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # the server before may have unlinked the file we opened as it
            # exited: only a lock on the file still at path counts
            st, now = os.fstat(fd), _identity(path)
            if (st.st_dev, st.st_ino) == now:
                self.lock_fd = fd
                return True
            os.close(fd)

    def listen(self):
        """Bind the socket (a leftover of a dead server is replaced: we
        hold the lock) and write the pid file."""
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)  # the socket is born 0600: root only
        try:
            listener.bind(self.sock_path)
        finally:
            os.umask(old)
        listener.listen(128)
        listener.setblocking(False)
        st = os.stat(self.sock_path)
        self.sock_identity = (st.st_dev, st.st_ino)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        pid_file = address.pid_path(self.sock_path)
        tmp = f"{pid_file}.tmp.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(tmp, pid_file)

    def stop_listening(self, reason=wire.BUSY):
        """Close and unlink the socket (if it is still ours), remove the pid
        file (if it is ours) and release the lock, so a new server may start.
        Clients already in the backlog are refused with reason (they fall
        back at once instead of seeing their connection reset)."""
        if self.listener is not None:
            self._refuse_backlog(reason)
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None
            try:
                st = os.stat(self.sock_path)
                if (st.st_dev, st.st_ino) == self.sock_identity:
                    os.unlink(self.sock_path)
            except FileNotFoundError:
                pass
        pid_file = address.pid_path(self.sock_path)
        try:
            with open(pid_file) as f:
                if f.read().strip() == str(os.getpid()):
                    os.unlink(pid_file)
        except FileNotFoundError:
            pass
        if self.lock_fd >= 0:
            # unlinked while held: a server that opened it meanwhile sees
            # it is not at the path any more and opens the new one
            try:
                os.unlink(address.lock_path(self.sock_path))
            except FileNotFoundError:
                pass
            os.close(self.lock_fd)
            self.lock_fd = -1
        self.stopping = True
        self._retire_spare()  # forked from code that may be stale now

    def _refuse_backlog(self, reason):
        while True:
            try:
                conn, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError:
                return
            self._refuse(conn, reason, [])

    # -- connections

    def accept(self, ours):
        """Serve one new connection up to its worker's fork."""
        accepted_ns = time.monotonic_ns()
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        self.last_activity = time.monotonic()
        fds = []
        try:
            conn.setblocking(True)
            conn.settimeout(REQUEST_TIMEOUT)
            try:
                peer.check(conn, ours)
                trusted = True
            except (peer.Untrusted, OSError):
                trusted = False
            # the request is read (bounded) even from a peer to refuse: a
            # reply before the client has sent would fail its send with
            # EPIPE, and the client should see why it falls back
            try:
                request, fds, mask = self._read_request(conn)
            except (wire.WireError, OSError, EOFError):
                self._refuse(conn, wire.UNTRUSTED if not trusted else wire.BAD_REQUEST, fds)
                return
            if not trusted:
                self._refuse(conn, wire.UNTRUSTED, fds)
                return
            if self.watch.stale():
                self._refuse(conn, wire.STALE, fds)
                self.stop_listening(wire.STALE)
                return
            if self.stopping:
                self._refuse(conn, wire.BUSY, fds)
                return
            self._fork(conn, request, fds, mask, accepted_ns)
        except BaseException:
            for fd in fds:
                os.close(fd)
            conn.close()
            raise

    def _refuse(self, conn, reason, fds):
        for fd in fds:
            os.close(fd)
        fds.clear()
        try:
            conn.sendall(wire.encode_message(wire.REFUSED, reason))
        except OSError:
            pass
        conn.close()

    def _read_request(self, conn):
        """(Request, fds, mask): the header with its fds, then the payload."""
        fds, data = [], b""
        while len(data) < wire.HEADER.size:
            chunk, ancdata, flags, _ = conn.recvmsg(
                wire.HEADER.size - len(data), socket.CMSG_SPACE(MAX_FDS * 4))
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    got = array.array("i")
                    got.frombytes(cdata[:len(cdata) - len(cdata) % got.itemsize])
                    fds.extend(got)
            if flags & socket.MSG_CTRUNC:
                raise wire.WireError("too many fds")
            if not chunk:
                raise EOFError
            data += chunk
        length, mask = wire.decode_header(data)
        if len(fds) != wire.fd_count(mask):
            for fd in fds:
                os.close(fd)
            raise wire.WireError("fds do not match the mask")
        try:
            payload = bytearray()
            while len(payload) < length:
                chunk = conn.recv(min(length - len(payload), 1 << 20))
                if not chunk:
                    raise EOFError
                payload += chunk
            request = wire.decode_payload(bytes(payload))
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return request, fds, mask

    def _server_fds(self):
        fds = [c.conn.fileno() for c in self.clients.values()]
        if self.listener is not None:
            fds.append(self.listener.fileno())
        fds += [self.watch.fileno(), self.wakeup_r, self.wakeup_w, self.lock_fd,
                self.selector.fileno()] + [fd for fd, what in self.pool_channels
                                           if what in ("netpool", "filler")]
        if self.spare is not None:
            fds.append(self.spare[1].fileno())
        if self.net_pool is not None:  # the slots held here: a worker gets one only by asking
            fds += [slot.fd for pool in self.net_pool._pools.values()
                    if pool.pid == os.getpid() for slot in pool.slots if slot.fd >= 0]
        return [fd for fd in fds if fd >= 0]

    def _fork(self, conn, request, fds, mask, accepted_ns):
        """Hand the request to the spare worker (or, with none, fork one
        for it now)."""
        from bocker.server import worker

        pid = None
        if self.spare is not None:
            pid, channel = self.spare
            self.spare = None
            try:
                worker.hand_over(channel, request, fds, mask, accepted_ns)
            except OSError:  # the spare died: retire it, fork as ever
                self.retired.append(pid)
                pid = None
            channel.close()
        if pid is None:
            close = self._server_fds() + [conn.fileno()]
            pid = os.fork()
            if pid == 0:  # never returns
                worker.become(request, fds, mask, close, accepted_ns)
        for fd in fds:
            os.close(fd)
        try:
            os.setpgid(pid, pid)  # also here: a 'K' may come before the child ran
        except OSError:
            pass
        client = Client(conn)
        client.pid = pid
        conn.setblocking(False)
        self.clients[conn.fileno()] = client
        self.selector.register(conn, selectors.EVENT_READ, client)
        self._send(client, wire.STARTED, pid)

    def _send(self, client, kind, value):
        try:
            client.conn.setblocking(True)
            client.conn.settimeout(1.0)
            client.conn.sendall(wire.encode_message(kind, value))
        except OSError:
            pass
        finally:
            client.conn.setblocking(False)

    def client_readable(self, client):
        """'K' messages (relayed to the worker's group) or EOF (the client
        died: kill the worker's group, as the terminal would a CLI's)."""
        try:
            data = client.conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._stop_reading(client)
            if not client.reaped:
                _killpg(client.pid, signal.SIGKILL)
            return
        client.buffer += data
        while len(client.buffer) >= wire.MESSAGE.size:
            message, client.buffer = client.buffer[:8], client.buffer[8:]
            try:
                kind, signo = wire.decode_message(message)
            except wire.WireError:
                continue
            if kind == wire.KILL and 0 < signo < signal.NSIG and not client.reaped:
                _killpg(client.pid, signo)

    def _stop_reading(self, client):
        if client.reading:
            self.selector.unregister(client.conn)
            client.reading = False

    def reap(self):
        """Report every worker that ended and drop its client."""
        for fd, client in list(self.clients.items()):
            try:
                pid, status = os.waitpid(client.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = client.pid, 0
            if pid == 0:
                continue
            client.reaped = True
            if os.WIFSIGNALED(status):
                self._send(client, wire.SIGNALED, os.WTERMSIG(status))
            else:
                self._send(client, wire.EXITED, os.waitstatus_to_exitcode(status))
            self._stop_reading(client)
            client.conn.close()
            del self.clients[fd]
            self.last_activity = time.monotonic()
        self.retired = [pid for pid in self.retired if not _reaped(pid)]

    # -- the loop

    def serve(self):
        """Run until idle, SIGTERM, or stale with no worker left."""
        ours = peer.ourselves()
        self.selector.register(self.watch.fileno(), selectors.EVENT_READ, "watch")
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, "wakeup")
        for fd, what in self.pool_channels:
            self.selector.register(fd, selectors.EVENT_READ, what)
        while True:
            if self.terminate:
                break
            if self.stopping and not self.clients:
                break
            timeout = self._timeout()
            if timeout is not None and timeout <= 0 and not self.clients:
                break  # idle
            if self.spare is None and self.listener is not None:
                self._fork_spare()  # between requests: never on a start's path
            for key, _ in self.selector.select(timeout):
                what = key.data
                if what == "accept" and self.listener is not None:
                    self.accept(ours)
                elif what == "netpool":      # a worker asks for a network slot
                    _guarded(self.net_pool.serve_take, self.net_pool_end)
                    self._top_up_slots()
                elif what == "filler":       # a slot the filler made
                    self._receive_slot()
                elif what == "watch":
                    if self.watch.stale() and not self.stopping:
                        self.stop_listening(wire.STALE)
                    if self.stopping:
                        self.selector.unregister(self.watch.fileno())
                elif what == "wakeup":
                    try:
                        os.read(self.wakeup_r, 512)
                    except BlockingIOError:
                        pass
                elif isinstance(what, Client):
                    self.client_readable(what)
            self.reap()
        self.shutdown()

    def _timeout(self):
        if self.clients:
            return None
        return self.idle - (time.monotonic() - self.last_activity)

    # -- the pools' network slots: held here, made by the filler

    def _top_up_slots(self):
        """Ask the filler for the slots each root's pool lacks (a root gets
        a pool the first time a worker asks: serve_take)."""
        from bocker.server import filler

        if self.filler is None:
            return
        for root, pool in list(self.net_pool._pools.items()):
            if pool.pid != os.getpid():
                continue
            lacking = SLOTS_PER_ROOT - len(pool.slots) - self.slots_asked.get(root, 0)
            if lacking > 0:
                filler.ask_slots(self.filler, root, lacking)
                self.slots_asked[root] = self.slots_asked.get(root, 0) + lacking

    def _receive_slot(self):
        """One slot the filler sent (the same reply a worker gets)."""
        try:
            slot = self.net_pool.receive_slot(self.filler)
        except (EOFError, OSError, ValueError) as e:
            if isinstance(e, EOFError):  # the filler is gone: no more slots
                self.selector.unregister(self.filler)
                self.filler.close()
                self.filler = None
            return
        if slot is None:
            return
        self.slots_asked[slot.root] = max(0, self.slots_asked.get(slot.root, 0) - 1)
        pool = self.net_pool._pools.get(slot.root)
        if pool is None or pool.pid != os.getpid():
            self.net_pool.destroy_slot(slot)
        else:
            pool.slots.append(slot)

    # -- the spare worker

    def _fork_spare(self):
        """Fork the next worker ahead of its request (worker.spare): the
        fork of this big process (~1 ms, and the child's first page
        faults) is paid while nobody waits."""
        from bocker.server import worker

        ours, theirs = socket.socketpair(socket.AF_UNIX,
                                         socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        close = self._server_fds() + [ours.fileno()]
        pid = os.fork()
        if pid == 0:  # never returns
            worker.spare(theirs, close)
        theirs.close()
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        self.spare = (pid, ours)

    def _retire_spare(self):
        if self.spare is not None:
            pid, channel = self.spare
            channel.close()  # its EOF: it exits
            self.retired.append(pid)
            self.spare = None

    def shutdown(self):
        """Unlink, drop the pools (the slots held here, then the filler,
        which removes its rootfs entries and leases), leave the workers
        running to their end."""
        if not self.stopping or self.lock_fd >= 0:
            self.stop_listening()
        self._retire_spare()
        if self.net_pool is not None:
            _guarded(self.net_pool.drain_all)
        if self.filler is not None:
            self.filler.close()
            self.filler = None
        if self.filler_pid is not None:
            _wait_gone(self.filler_pid, 10.0)
        for pid in self.retired:
            _wait_gone(pid, 1.0)


def _open_pool_channels(server):
    """The pools' ways in: the network pool's socketpair (a worker asks for
    a slot; its netns fd comes back over SCM_RIGHTS) and the filler (a
    child that makes rootfs entries from the workers' notes, and network
    slots on request).  The workers inherit their ends at fork."""
    from bocker.net import pool as net_pool
    from bocker.runtime import pool as rootfs_pool
    from bocker.server import filler

    rootfs_pool.open_channel(HIGH_FDS)
    ours, theirs = net_pool.server_pair(HIGH_FDS)
    net_pool.use_server(theirs.fileno())
    server.net_pool, server.net_pool_end = net_pool, ours
    server._net_pool_theirs = theirs  # kept open: every worker inherits it
    server.pool_channels.append((ours.fileno(), "netpool"))
    server.filler_pid, server.filler = filler.start(server._server_fds() + [ours.fileno()])
    server.pool_channels.append((server.filler.fileno(), "filler"))


def _reaped(pid):
    """True once pid (a child) has been reaped (now or before)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        return True


def _wait_gone(pid, timeout):
    """Reap the child pid, waiting at most timeout seconds (then SIGKILL)."""
    deadline = time.monotonic() + timeout
    while not _reaped(pid):
        if time.monotonic() >= deadline:
            try:
                os.kill(pid, signal.SIGKILL)  # our own child, not yet reaped: its PID
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            return
        time.sleep(0.005)


def _identity(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _killpg(pid, signo):
    try:
        os.killpg(pid, signo)
    except ProcessLookupError:
        pass
    except OSError as e:
        if e.errno != errno.EPERM:
            raise


def _install_signals(server):
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    server.wakeup_r, server.wakeup_w = r, w
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)

    def stop(signo, frame):
        server.terminate = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, lambda signo, frame: None)  # wakes select; reap() follows


def _enough_fds():
    """RLIMIT_NOFILE's soft limit raised to its hard one; True if that
    leaves room for the channels at HIGH_FDS and a connection per client.
    A server spawned by a client with a small hard limit (prlimit) cannot
    raise it: it does not serve (its clients run bocker-py themselves), and
    the next client with a usual limit spawns one that does.  Each worker
    takes its own client's limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError):
        return False
    return hard == resource.RLIM_INFINITY or hard >= 2 * HIGH_FDS


def main(argv=None):
    """Console entry point `bocker-server [SOCKPATH]` (default: this
    installation's socket, address.socket_path())."""
    argv = sys.argv[1:] if argv is None else argv
    sock_path = argv[0] if argv else address.socket_path()
    if os.geteuid() != 0:
        raise SystemExit("bocker-server: runs as root only (its clients are root)")
    os.chdir("/")  # hold no directory of anyone's
    if not _enough_fds():
        return 0
    server = Server(sock_path)
    if not server.lock():
        return 0  # one runs already: nothing to do
    gc.disable()  # no collections while the heap is built: freeze() keeps it shared
    server.watch = stale.watch_installation(address.bindir())
    preload()
    _install_signals(server)
    try:
        server.listen()
        gc.collect()
        gc.freeze()
        gc.enable()
        _open_pool_channels(server)  # forks the filler: from the frozen heap
        server.serve()
    except BaseException:
        server.shutdown()  # no socket, pid file or pool left by a server that failed
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
