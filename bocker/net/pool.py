"""Network slots made ahead, off the start path (issue 16; docs/architecture.md, "Pools").

A slot is a bridge container's network minus the container: a new network
namespace held by an fd only (never bind-mounted: it vanishes with its
holder), lo up, eth0 (the veth peer, 02:42 + address MAC) with a leased
address and the default route via the bridge's gateway, and the host veth
enslaved to the root's bridge but DOWN, under a pool name (bp...).

A start takes one before the clone (take_slot: the lease moves to the
container's ID) and the child joins its namespace (netns_fd) instead of
CLONE_NEWNET; the parent skips wire() and instead, while the child makes
its mounts, activates it (activate): the host veth gets the container's
name (ipam.veth_name: everything that finds a container's veth by its ID
finds it) and comes up in the same request (a link can be renamed only
while down), and is admitted to the anti-spoofing guard.  A slot whose bridge is gone or
was replaced, or whose root's network changed, is never handed out.

A pool is held by one process (NetPool); the bocker server holds its
pools in its parent and hands slots to its workers over an inherited
SOCK_SEQPACKET socketpair (serve_take / request_slot): a worker sends the
root and one end of a private pair, the server answers on it with the
slot's fields and its netns fd (SCM_RIGHTS).

Leases of a pool are owned by "pool-<pid>-<starttime>-<n>": ipam.prune
keeps them while that process lives (pool_owner_alive), and drain_all
releases every lease its own process's pools still hold.
"""
import array
import contextlib
import errno
import ipaddress
import json
import os
import socket
import struct
import time

from bocker import trace
from bocker.kernel import procfs
from bocker.net import ipam

VETH_PREFIX = "bp"           # pooled host veths (network.POOL_VETH_PREFIX; containers are "bk")
OWNER_PREFIX = ipam.POOL_OWNER_PREFIX
MAX_ROOT = 4096
MAX_REPLY = 4096
REPLY_TIMEOUT_S = 0.2        # a server that does not answer: start without a slot
_REQ, _SLOT, _NONE = b"NPQ1", b"NPS1", b"NPN1"
_HEAD = struct.Struct("<4sI")

_pools = {}                  # root -> NetPool of this process
_server_sock = -1            # a worker's end of the server's socketpair
_seq = 0


class Slot:
    """One network made ahead: fields as sent to a worker, and fd (its
    netns; -1 once handed over)."""

    FIELDS = ("root", "bridge", "bridge_index", "subnet", "table", "ip", "prefixlen",
              "gateway", "mac", "veth", "owner")

    def __init__(self, fd=-1, **fields):
        self.fd = fd
        for name in self.FIELDS:
            setattr(self, name, fields[name])

    def fields(self):
        """The slot's fields as a dict (what the reply carries)."""
        return {name: getattr(self, name) for name in self.FIELDS}


# ------------------------------------------------------------ owners

def _owner_prefix():
    """pool-<pid>-<start time>-: this process's lease owners start so."""
    me = os.getpid()
    return f"{OWNER_PREFIX}{me}-{procfs.start_time(me)}-"


def _owner(n):
    return f"{_owner_prefix()}{n}"


def _mine(owner):
    """True for the lease owners of this process's pools."""
    return owner.startswith(_owner_prefix())


def _veth(n):
    """A pooled host veth's name: bp + pid (7 hex) + n (5 hex): 14 chars."""
    return f"{VETH_PREFIX}{os.getpid():07x}{n & 0xfffff:05x}"


# ------------------------------------------------------------ making

def make_slot(paths):
    """A new slot for the root of paths (its bridge and subnet from
    network.json), or an OSError/BockerError; nothing is left on failure."""
    global _seq
    from bocker.kernel import native
    from bocker.net import network
    from bocker.net.rtnl import Rtnl
    from bocker.runtime import networking

    config = networking.network_config(paths)
    bridge, subnet = config["bridge"], config["subnet"]
    index = network.check_ready(bridge)
    _seq += 1
    owner, veth = _owner(_seq), _veth(_seq)
    net = ipaddress.IPv4Network(subnet, strict=False)
    gw = network.gateway(net)
    ip = ipam.lease(paths.leases, owner, subnet)
    fd = -1
    try:
        mac = ipam.mac_for(ip)
        fd = native.new_netns()
        with Rtnl() as nl:
            # down: renamed and brought up in one request when taken
            nl.create_veth(veth, "eth0", fd, master=index, up=False, peer_mac=mac)
        network.refuse_router_advertisements(veth)
        # eth0 up, its address and route now; its carrier comes with the host end
        native.run_in_netns(fd, lambda: network.configure_inside(ip, net.prefixlen, gw))
    except BaseException:
        network.delete_link(veth)
        if fd >= 0:
            os.close(fd)
        ipam.release(paths.leases, owner)
        raise
    return Slot(fd, root=paths.root, bridge=bridge, bridge_index=index, subnet=str(net),
                table=config["table"], ip=ip, prefixlen=net.prefixlen, gateway=gw, mac=mac,
                veth=veth, owner=owner)


def destroy_slot(slot, leases_dir=None):
    """Give a slot back: its veth, its netns fd, its lease (never raises
    for what is gone already)."""
    from bocker.net import network

    with contextlib.suppress(OSError):
        network.delete_link(slot.veth)
    if slot.fd >= 0:
        os.close(slot.fd)
        slot.fd = -1
    ipam.release(leases_dir or os.path.join(slot.root, "leases"), slot.owner)


# ------------------------------------------------------------ taking

def _valid(paths, slot):
    """A slot may be handed out only to its own root, while network.json
    names its bridge, subnet and table and that bridge is the one it was
    made on (same ifindex) and its lease is still its own."""
    from bocker.errors import BockerError
    from bocker.runtime import networking

    try:
        config = networking.network_config(paths)
        index = socket.if_nametoindex(slot.bridge)
    except (OSError, BockerError):
        return False
    try:
        owner = os.readlink(os.path.join(paths.leases, slot.ip))
    except OSError:
        return False
    return (slot.root == paths.root and config["bridge"] == slot.bridge
            and config["table"] == slot.table
            and str(ipaddress.IPv4Network(config["subnet"], strict=False)) == slot.subnet
            and index == slot.bridge_index and owner == slot.owner)


def _move_lease(paths, slot, cid):
    """The slot's lease becomes cid's: a new symlink renamed over it
    (atomic: the address is never free meanwhile)."""
    tmp = f"{paths.leases}.take-{cid}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(cid, tmp)
    os.rename(tmp, os.path.join(paths.leases, slot.ip))


def _claim(paths, slot, cid):
    """Make slot's lease cid's.  False (slot destroyed) if it may not be
    handed out or the move failed."""
    if not _valid(paths, slot):
        destroy_slot(slot, paths.leases)
        return False
    try:
        _move_lease(paths, slot, cid)
    except OSError:
        destroy_slot(slot, paths.leases)
        return False
    slot.owner = cid
    return True


def activate(slot, cid):
    """The second half of a take, after the clone (while the child makes
    its mounts, as wire() ran): the host veth gets cid's name and comes
    up in one request (a link is renamed only while down), is checked to
    be on the slot's bridge still, and is admitted to the guard.  On
    failure the caller's undo (network.detach) removes the veth."""
    from bocker.net import nat
    from bocker.net.rtnl import Rtnl

    name = ipam.veth_name(cid)
    with trace.span("netpool activate", container=cid, veth=slot.veth) as sp, Rtnl() as nl:
        # one request: the name first (the link is down), then up
        nl.set_link(slot.veth, name=name, up=True)
        slot.veth = name
        if (nl.get_link(name).get("master") or 0) != slot.bridge_index:
            raise OSError(errno.ENODEV, f"{name} is no longer on {slot.bridge}")
        nat.admit(slot.table, name, slot.mac, slot.ip)
        sp.set(name)


def take_slot(paths, cid):
    """A slot made for this root, its lease now cid's, or None (none
    ready, or the ones there were are stale: they are destroyed).  From
    this process's own NetPool if it has one for the root, else from the
    bocker server (in a worker).  The caller owns slot.fd, calls
    activate(slot, cid) before the container runs (its veth then has
    cid's name, up and guarded) and undoes as for wire()."""
    pool = _pools.get(paths.root)
    if (pool is None or pool.pid != os.getpid()) and _server_sock < 0:
        return None     # no pool here: nothing on the start path
    with trace.span("netpool take", container=cid) as sp:
        while pool is not None and pool.pid == os.getpid() and pool.slots:
            slot = pool.slots.pop(0)
            if _claim(paths, slot, cid):
                sp.set(f"local {slot.ip}")
                return slot
        if _server_sock >= 0:
            slot = request_slot(_server_sock, paths)
            if slot is not None and _claim(paths, slot, cid):
                sp.set(f"server {slot.ip}")
                return slot
        sp.set("none")
    return None


# ------------------------------------------------------------ pools

class NetPool:
    """This process's slots for one root: up to size of them, refilled by
    refill(); registered so take_slot finds them."""

    def __init__(self, paths, size=4):
        self.paths, self.size, self.slots, self.pid = paths, size, [], os.getpid()
        old = _pools.get(paths.root)
        if old is not None and old.pid == self.pid:
            old.drain()
        _pools[paths.root] = self

    def refill(self, budget_ms=None):
        """Make slots until size or budget_ms is spent (None: no limit);
        stale ones are dropped first.  Returns how many were made."""
        start, made = time.monotonic(), 0
        keep = []
        for slot in self.slots:
            if _valid(self.paths, slot):
                keep.append(slot)
            else:
                destroy_slot(slot, self.paths.leases)
        self.slots = keep
        while len(self.slots) < self.size:
            if budget_ms is not None and (time.monotonic() - start) * 1000 >= budget_ms:
                break
            self.slots.append(make_slot(self.paths))
            made += 1
        return made

    def drain(self):
        """Destroy every slot, and drop every lease of this process's
        pools left in the root (slots handed to a worker that never took
        them); unregistered."""
        while self.slots:
            destroy_slot(self.slots.pop(), self.paths.leases)
        drop_own_leases(self.paths.leases)
        if _pools.get(self.paths.root) is self:
            del _pools[self.paths.root]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.drain()


def drop_own_leases(leases_dir):
    """Drop the leases this process's slots still own in leases_dir (slots
    handed to a worker that never took them)."""
    from bocker import claims

    for ip, owner in ipam.leases(leases_dir).items():
        if _mine(owner):
            claims.drop(leases_dir, ip)


def drain_all():
    """Drain every pool of this process (idle exit, SIGTERM, tests)."""
    for pool in [p for p in _pools.values() if p.pid == os.getpid()]:
        with contextlib.suppress(Exception):
            pool.drain()


# ------------------------------------------------------------ server

def use_server(fd):
    """In a worker (set before fork, or after): take slots from the
    server over fd, the worker's end of its socketpair."""
    global _server_sock
    _server_sock = fd


def server_pair(low=0):
    """(server end, worker end): the socketpair of serve_take/request_slot;
    the worker's end at fd low or above (a worker under a client's small
    RLIMIT_NOFILE keeps its low fds free, as a bocker-py would)."""
    import fcntl

    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if b.fileno() < low:
        moved = socket.socket(fileno=fcntl.fcntl(b.fileno(), fcntl.F_DUPFD_CLOEXEC, low))
        b.close()
        b = moved
    return a, b


def encode_request(root):
    """A worker's request: header, then the root's path."""
    data = root.encode()
    if not data or len(data) > MAX_ROOT or b"\0" in data:
        raise ValueError("bad root")
    return _HEAD.pack(_REQ, len(data)) + data


def decode_request(data):
    """The root a request names; ValueError if it is not one."""
    if len(data) < _HEAD.size:
        raise ValueError("short request")
    tag, n = _HEAD.unpack_from(data)
    body = data[_HEAD.size:]
    if tag != _REQ or n != len(body) or not 0 < n <= MAX_ROOT or b"\0" in body:
        raise ValueError("bad request")
    root = body.decode()
    if not os.path.isabs(root):
        raise ValueError("bad request")
    return root


def encode_reply(slot):
    """The server's answer: a slot's fields (its fd rides along), or none."""
    if slot is None:
        return _HEAD.pack(_NONE, 0)
    data = json.dumps(slot.fields(), sort_keys=True).encode()
    return _HEAD.pack(_SLOT, len(data)) + data


def decode_reply(data):
    """The fields of a reply (checked), or None for 'no slot';
    ValueError for anything else."""
    if len(data) < _HEAD.size:
        raise ValueError("short reply")
    tag, n = _HEAD.unpack_from(data)
    body = data[_HEAD.size:]
    if n != len(body) or n > MAX_REPLY:
        raise ValueError("bad reply")
    if tag == _NONE and n == 0:
        return None
    if tag != _SLOT:
        raise ValueError("bad reply")
    try:
        fields = json.loads(body)
    except (ValueError, RecursionError):
        raise ValueError("bad reply") from None
    return _checked_fields(fields)


def _checked_fields(f):
    if not isinstance(f, dict) or set(f) != set(Slot.FIELDS):
        raise ValueError("bad reply")
    strs = ("root", "bridge", "subnet", "table", "ip", "gateway", "mac", "veth", "owner")
    if not all(isinstance(f[k], str) and len(f[k]) <= MAX_ROOT for k in strs):
        raise ValueError("bad reply")
    if not all(type(f[k]) is int for k in ("bridge_index", "prefixlen")) or f["bridge_index"] <= 0:
        raise ValueError("bad reply")
    try:
        net = ipaddress.IPv4Network(f["subnet"])
        ip = ipaddress.IPv4Address(f["ip"])
    except ValueError:
        raise ValueError("bad reply") from None
    if (ip not in net or net.prefixlen != f["prefixlen"] or f["gateway"] != ipam.gateway(net)
            or f["mac"] != ipam.mac_for(f["ip"]) or not f["veth"].startswith(VETH_PREFIX)
            or len(f["veth"]) >= ipam.IFNAMSIZ or not f["owner"].startswith(OWNER_PREFIX)
            or not os.path.isabs(f["root"])):
        raise ValueError("bad reply")
    try:
        ipam._check_ifname(f["bridge"])
        ipam._check_ifname(f["veth"])
    except Exception:
        raise ValueError("bad reply") from None
    return f


def _recv(sock, size, maxfds):
    """One message and up to maxfds fds (every fd received is CLOEXEC)."""
    fds = array.array("i")
    msg, anc, flags, _ = sock.recvmsg(size, socket.CMSG_SPACE(maxfds * fds.itemsize),
                                      socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(fds) > maxfds:
        for fd in fds:
            os.close(fd)
        raise ValueError("message truncated")
    return msg, list(fds)


def serve_take(sock, make_paths=None):
    """Server side: answer one worker's request waiting on sock (the
    server's end): pop a slot of that root's pool (made for it if the
    root has none yet: the server then asks its filler for slots) and send it with its fd on
    the worker's private socket, or 'none'.  Never raises."""
    try:
        msg, fds = _recv(sock, _HEAD.size + MAX_ROOT, 1)
    except (OSError, ValueError):
        return
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return
    reply = socket.socket(fileno=fds[0])
    with reply:
        slot = None
        try:
            root = decode_request(msg)
            pool = _pools.get(root)
            if pool is None or pool.pid != os.getpid():
                from bocker.state import Paths

                pool = NetPool((make_paths or Paths)(root))
            while pool.slots and slot is None:
                slot = pool.slots.pop(0)
                if not _valid(pool.paths, slot):
                    destroy_slot(slot, pool.paths.leases)
                    slot = None
        except (ValueError, OSError):
            slot = None
        try:
            if slot is None:
                reply.send(encode_reply(None), socket.MSG_DONTWAIT)
            else:
                reply.sendmsg([encode_reply(slot)],
                              [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                array.array("i", [slot.fd]))], socket.MSG_DONTWAIT)
        except OSError:
            if slot is not None:    # nobody got it
                destroy_slot(slot)
                slot = None
        if slot is not None:
            # the worker has it now (its lease is moved when it takes it;
            # one it never takes goes at drain)
            os.close(slot.fd)
            slot.fd = -1


def request_slot(fd, paths, timeout=REPLY_TIMEOUT_S):
    """Worker side: ask the server (over fd, the worker's end) for a slot
    of paths' root; returns an unclaimed Slot (take_slot claims it) or
    None (none, no answer in time, or a bad answer)."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with mine:
        try:
            with socket.socket(fileno=os.dup(fd)) as shared:
                shared.sendmsg([encode_request(paths.root)],
                               [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                 array.array("i", [theirs.fileno()]))])
        except (OSError, ValueError):
            return None
        finally:
            theirs.close()
        mine.settimeout(timeout)
        try:
            slot = receive_slot(mine)
        except (OSError, ValueError, EOFError):
            return None
    if slot is not None and slot.root != paths.root:
        os.close(slot.fd)
        return None
    return slot


def receive_slot(sock):
    """One slot reply on sock (a worker's from the server, the server's
    from its filler): a Slot with its fd, or None ('none', or anything that
    is not a slot: its fds closed).  EOFError at the stream's end; OSError
    or ValueError (truncated) from the receive."""
    msg, fds = _recv(sock, _HEAD.size + MAX_REPLY, 1)
    if not msg and not fds:
        raise EOFError
    try:
        fields = decode_reply(msg)
    except ValueError:
        fields = None
    if fields is None or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        return None
    return Slot(fds[0], **fields)
