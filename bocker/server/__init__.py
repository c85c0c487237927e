"""The warm bocker server: a pre-imported Python that forks a worker per
command for the C client (csrc/client.c), so a `bocker` typed in a shell
pays the interpreter start and bocker's imports once, not per command.

address.py names the socket, wire.py is the protocol, peer.py decides whom
to serve, stale.py notices new code, worker.py becomes the command, and
main.py is the loop (docs/architecture.md, "The CLI").
"""
