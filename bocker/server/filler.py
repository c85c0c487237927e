"""The server's filler: one child of the server that makes the pools'
contents ahead, so that neither the server's loop nor any start waits for
a btrfs snapshot or a network namespace being made.

- Rootfs snapshots (runtime/pool.py): workers write notes (an image was
  wanted, a command ran) into the pool's pipe, whose read end the filler
  alone reads; it makes and prewarms the entries itself (they are named
  for its PID: it lives as long as the server).
- Network slots (net/pool.py): the server holds the slots it hands to
  workers (a netns is an fd, which cannot be claimed by rename); the
  filler makes them on the server's request (`N` + count + root) and sends
  each back over its socketpair with the netns fd (SCM_RIGHTS), in the
  net pool's reply encoding.

It exits when the server closes its end (idle exit, SIGTERM, stale code),
removing the rootfs entries and the leases it still owns.
"""
import os
import select
import socket
import struct

REQUEST = struct.Struct("<cI")   # b"N", slots wanted; then the root's path
MAX_ROOT = 4096
SLICE_MS = 5                     # rootfs work between looks at the server's requests


def start(close_fds):
    """Fork the filler; returns (pid, the server's end of its socketpair).
    close_fds: the server's fds the filler must not hold (its listener,
    client connections)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            ours.close()
            from bocker.server import worker

            worker.prepare(close_fds)  # its own group: a client's signal is never ours
            os.chdir("/")
            # the least CPU weight: its work is for later starts, and on a
            # busy machine the server and the worker of the start running
            # now must not wait for a CPU behind it (sustained blocks here:
            # 37.6 ms a start against 37.9 at nice 0, within their noise)
            os.nice(19)
            _serve(theirs)
        except BaseException:  # noqa: BLE001 - the pools are an optimisation: just end
            code = 1
        os._exit(code)
    theirs.close()
    return pid, ours


def ask_slots(sock, root, count):
    """Server side: ask the filler for count more slots of root."""
    data = root.encode("utf-8", "surrogateescape")
    if 0 < count and 0 < len(data) <= MAX_ROOT:
        try:
            sock.send(REQUEST.pack(b"N", count) + data, socket.MSG_DONTWAIT)
        except OSError:
            pass  # a full or closed channel: starts go without a slot meanwhile


def _serve(sock):
    """The filler's loop: the server's requests first, then rootfs work in
    slices, until the server is gone."""
    from bocker.runtime import pool as rootfs_pool

    notes = rootfs_pool._chan_r
    busy = False  # rootfs entries may be missing: refill between requests
    try:
        while True:
            ready = select.select([sock, notes], [], [], 0 if busy else None)[0]
            if sock in ready and not _request(sock):
                return
            if notes in ready:
                rootfs_pool.after_command()
                busy = True
            if busy and not ready:
                busy = rootfs_pool.refill_some(SLICE_MS) > 0
    finally:
        rootfs_pool.drain_all()
        _drop_leases()


def _request(sock):
    """Serve one request of the server; False once it is gone."""
    from bocker.net import pool as net_pool
    from bocker.state import Paths

    try:
        data = sock.recv(REQUEST.size + MAX_ROOT)
    except OSError:
        return False
    if not data:
        return False
    if len(data) <= REQUEST.size:
        return True
    kind, count = REQUEST.unpack_from(data)
    root = data[REQUEST.size:].decode("utf-8", "surrogateescape")
    if kind != b"N" or not os.path.isabs(root) or "\0" in root:
        return True
    paths = Paths(root)
    for _ in range(min(count, 16)):
        try:
            slot = net_pool.make_slot(paths)
        except Exception:  # noqa: BLE001 - no bridge (yet), a full subnet: none now
            return True
        try:
            sock.sendmsg([net_pool.encode_reply(slot)],
                         [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _fds(slot.fd))])
        except OSError:
            net_pool.destroy_slot(slot, paths.leases)
            return True
        os.close(slot.fd)  # the server holds it now
        _made.add(root)
    return True


_made = set()  # roots whose leases the filler owns (released at its end)


def _fds(fd):
    import array

    return array.array("i", [fd])


def _drop_leases():
    """The leases of slots the filler made and nobody took: theirs to drop
    (the server destroys the slots it still holds before it closes us)."""
    from bocker.net import pool as net_pool
    from bocker.state import Paths

    for root in _made:
        try:
            net_pool.drop_own_leases(Paths(root).leases)
        except OSError:
            pass
