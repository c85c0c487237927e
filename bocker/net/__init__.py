"""Container networking: addresses (network: IPAM, bridge, veth, the /etc
files' text), rtnetlink (netlink) and nfnetlink (nfnetlink) encoders and
sockets, and nftables rules (nat: NAT, published ports, the loopback drop
and the anti-spoofing guard)."""
