"""A small Python client of the bocker server, for tests: it speaks the
protocol of docs/architecture.md ("The CLI") and bocker/server/wire.py as csrc/client.c does (argv, env, umask,
limits, fds 0-2 and the cwd over SCM_RIGHTS, signals as 'K'), so the
server is tested without depending on the C client.

`python pyclient.py SOCKPATH ARG...` exits as the command did ('X' code,
'Q' by the same signal); a refusal ('R' n) exits 200+n, no server (connect
failed) 199, the server gone after 'S' 125, as the C client.
"""
import os
import resource
import signal
import socket
import struct
import sys

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT, signal.SIGALRM)
NO_SERVER, REFUSED_BASE = 199, 200


def payload(argv, environ):
    """The request's records, as bytes."""
    out = [b"A" + os.fsencode(a) for a in argv]
    out += [b"E" + os.fsencode(k) + b"=" + os.fsencode(v) for k, v in environ.items()]
    mask = os.umask(0)
    os.umask(mask)
    out.append(b"U%o" % mask)
    for number in range(16):
        soft, hard = resource.getrlimit(number)
        fmt = [-1 if x == resource.RLIM_INFINITY else x for x in (soft, hard)]
        out.append(b"L%d:%d:%d" % (number, fmt[0], fmt[1]))
    return b"".join(r + b"\0" for r in out)


def request(argv, environ):
    """(header+payload bytes, fds to send)."""
    fds, mask = [], 0
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            continue
        fds.append(fd)
        mask |= 1 << fd
    fds.append(os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
    mask |= 1 << 3
    body = payload(argv, environ)
    return struct.pack("<4sIII", b"BKR1", 1, len(body), mask) + body, fds


def read_message(sock):
    data = b""
    while len(data) < 8:
        chunk = sock.recv(8 - len(data))
        if not chunk:
            return None
        data += chunk
    return struct.unpack("<B3xi", data)


def run(sock_path, argv):
    """The exit status this client ends with (see the module doc)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(sock_path)
    except OSError:
        return NO_SERVER
    data, fds = request(argv, dict(os.environ))
    try:
        sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                               struct.pack(f"{len(fds)}i", *fds))])
    except BrokenPipeError:
        pass  # refused already (its backlog drained): the reply is waiting
    os.close(fds[-1])
    message = read_message(sock)
    if message is None:
        return NO_SERVER
    kind, value = message
    if kind == ord("R"):
        return REFUSED_BASE + value
    assert kind == ord("S"), message
    print(f"pyclient: worker {value}", file=sys.stderr) if os.environ.get("PYCLIENT_SAY_PID") else None

    def forward(signo, frame):
        sock.send(struct.pack("<B3xi", ord("K"), signo))

    for signo in FORWARDED:
        signal.signal(signo, forward)
    message = read_message(sock)
    if message is None:
        print("bocker: the bocker server went away", file=sys.stderr)
        return 125
    kind, value = message
    if kind == ord("Q"):
        signal.signal(value, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [value])
        os.kill(os.getpid(), value)
        return 128 + value
    return value


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], ["bocker", *sys.argv[2:]]))
