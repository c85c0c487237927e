"""Container networking: addresses (network: IPAM, bridge, veth, the /etc
files' text), rtnetlink (netlink) and nfnetlink (nfnetlink) encoders and
sockets, and nftables rules (nat: NAT, published ports, the loopback drop
and the anti-spoofing guard)."""


def shown(text, limit=64):
    """text (a user's or an image's) as an error message quotes it: at
    most limit characters, escaped (ascii) when it is not printable, so a
    newline in it never splits the message's one line."""
    text = str(text)[:limit]
    return text if text.isprintable() else ascii(text)[1:-1]
