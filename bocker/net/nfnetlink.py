"""nf_tables set elements over netlink, without running `nft`.

The start path admits each container to the anti-spoofing guard (two set
elements, see bocker.nat).  As an `nft -f -` that is a fork and exec of
nft and its parser, 2-6 ms; as one nfnetlink batch from here it is one
sendmsg and the kernel's acks, well under a millisecond.  Tables, chains,
rules and listings stay with `nft` (bocker.nat): they happen at setup or
are rare.

A batch is NFNL_MSG_BATCH_BEGIN, one NFT_MSG_NEWSETELEM or
NFT_MSG_DELSETELEM per set, NFNL_MSG_BATCH_END; the kernel applies it as
one transaction (all or nothing).  Encoding is pure functions (unit-tested
without root); Nfnl sends and reads the acks, turning an error into
OSError naming the set.
"""
import os
import socket
import struct

from bocker.net.netlink import (NLM_F_ACK, NLM_F_CREATE, NLM_F_REQUEST, NLMSG_ERROR, NetlinkSocket,
                                attr, attr_str, mac_bytes, message, nested, parse_attrs,
                                parse_error, parse_messages)

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 16, 17      # NLMSG_MIN_TYPE, +1
NFT_MSG_NEWSETELEM, NFT_MSG_GETSETELEM, NFT_MSG_DELSETELEM = 12, 13, 14
NFPROTO_BRIDGE = 7

# linux/netfilter/nf_tables.h
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_TIMEOUT = 1, 4
NFTA_DATA_VALUE = 1

NFGENMSG = struct.Struct("=BBH")        # family, version, res_id (big-endian)
IFNAMSIZ = 16


def nfgenmsg(family, res_id=0):
    """struct nfgenmsg: the family the message is about, version 0."""
    return NFGENMSG.pack(family, 0, socket.htons(res_id))


def _reg32(data):
    # Each field of a concatenated key takes whole 32-bit registers.
    return data + b"\0" * (-len(data) % 4)


def key_ifname(name):
    """An `ifname` key field: the name NUL-padded to IFNAMSIZ."""
    raw = name.encode()
    if not 0 < len(raw) < IFNAMSIZ:
        raise ValueError(f"bad interface name '{name}'")
    return raw.ljust(IFNAMSIZ, b"\0")


def key_concat(*fields):
    """A concatenated key (`ifname . ether_addr . ipv4_addr`): each
    field's bytes padded to a multiple of 4."""
    return b"".join(_reg32(f) for f in fields)


def key_ether(mac):
    """An `ether_addr` key field."""
    return mac_bytes(mac)


def key_ipv4(ip):
    """An `ipv4_addr` key field (network byte order)."""
    return socket.inet_aton(ip)


def setelem_body(family, table, set_name, keys, timeout_ms=None):
    """The body of a NEWSETELEM/GETSETELEM/DELSETELEM for keys (bytes
    each), with timeout_ms: each element expires that long after (a set
    with `flags timeout`)."""
    timeout = b"" if timeout_ms is None else attr(NFTA_SET_ELEM_TIMEOUT,
                                                  struct.pack("!Q", timeout_ms))
    elems = b"".join(nested(NFTA_LIST_ELEM, nested(NFTA_SET_ELEM_KEY,
                                                   attr(NFTA_DATA_VALUE, k)) + timeout)
                     for k in keys)
    return (nfgenmsg(family) + attr_str(NFTA_SET_ELEM_LIST_TABLE, table)
            + attr_str(NFTA_SET_ELEM_LIST_SET, set_name)
            + nested(NFTA_SET_ELEM_LIST_ELEMENTS, elems))


def element_timeouts(body):
    """[timeout in ms, or None for an element that never expires] of each
    element in a NEWSETELEM body (the answer to a GETSETELEM)."""
    out = []
    for type_, payload in parse_attrs(body[NFGENMSG.size:]):
        if type_ != NFTA_SET_ELEM_LIST_ELEMENTS:
            continue
        for _, elem in parse_attrs(payload):
            attrs = dict(parse_attrs(elem))
            timeout = attrs.get(NFTA_SET_ELEM_TIMEOUT)
            out.append(struct.unpack("!Q", timeout)[0] if timeout else None)
    return out


def batch(seq, messages):
    """[(type, flags, body)] wrapped in BATCH_BEGIN/END, numbered from seq;
    returns (bytes, the seqs that will be acked)."""
    out = [message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq,
                   nfgenmsg(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES))]
    acked = []
    for i, (type_, flags, body) in enumerate(messages, 1):
        out.append(message((NFNL_SUBSYS_NFTABLES << 8) | type_,
                           NLM_F_REQUEST | NLM_F_ACK | flags, seq + i, body))
        acked.append(seq + i)
    end = seq + len(messages) + 1
    out.append(message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, end,
                       nfgenmsg(socket.AF_UNSPEC, NFNL_SUBSYS_NFTABLES)))
    return b"".join(out), acked


class Nfnl(NetlinkSocket):
    """A netfilter netlink socket in the caller's network namespace."""

    def __init__(self):
        super().__init__(NETLINK_NETFILTER)

    def transaction(self, messages, what):
        """Send [(type, flags, body)] as one batch; wait for every ack.
        An error raises OSError(errno, "<what>: <strerror>[ (<kernel text>)]")."""
        data, pending = batch(self.seq + 1, messages)
        self.seq += len(messages) + 2
        pending = set(pending)
        self.sock.sendto(data, (0, 0))
        while pending:
            for mtype, mflags, mseq, mbody in parse_messages(self.sock.recv(65536)):
                if mtype != NLMSG_ERROR or mseq not in pending:
                    continue
                err, text = parse_error(mflags, mbody)
                if err:
                    detail = f" ({text})" if text else ""
                    raise OSError(err, f"{what}: {os.strerror(err)}{detail}")
                pending.discard(mseq)

    def get(self, body, what):
        """One GETSETELEM (not batched): the NEWSETELEM bodies it answers."""
        self.seq += 1
        self.sock.sendto(message((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM,
                                 NLM_F_REQUEST | NLM_F_ACK, self.seq, body), (0, 0))
        return [mbody for _, mbody in self.until_ack(self.seq, what)]


def set_elements(add, family, table, sets, timeout_ms=None):
    """Change the keys of each set in sets {set_name: [key bytes]}, all in
    one transaction: add=True adds them (idempotently: no NLM_F_EXCL;
    with timeout_ms, an element already there gets that timeout on
    kernels that update one, 6.10 and later), False deletes them (ENOENT
    if one is missing), None adds then deletes them, which removes them
    whether or not they were there.

    A delete makes the kernel wait for an RCU grace period before it
    answers (10-16 ms here); an add or a timeout update does not.
    """
    new = [(NFT_MSG_NEWSETELEM, NLM_F_CREATE,
            setelem_body(family, table, name, keys, timeout_ms))
           for name, keys in sets.items()]
    delete = [(NFT_MSG_DELSETELEM, 0, setelem_body(family, table, name, keys))
              for name, keys in sets.items()]
    messages = {True: new, False: delete, None: new + delete}[add]
    verb = {True: "add", False: "delete", None: "remove"}[add]
    with Nfnl() as nl:
        nl.transaction(messages, f"nft {verb} element {table} {','.join(sets)}")


def get_timeouts(family, table, set_name, keys):
    """[timeout in ms or None (never expires)] of each key's element;
    ENOENT (FileNotFoundError) if one is not there, or has expired."""
    with Nfnl() as nl:
        bodies = nl.get(setelem_body(family, table, set_name, keys),
                        f"nft get element {table} {set_name}")
    return [t for body in bodies for t in element_timeouts(body)]
