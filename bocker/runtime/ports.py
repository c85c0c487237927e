"""`bocker port`: a container's published ports from its record
(NetworkSettings.Ports: "80/tcp" -> [{"HostIp", "HostPort"}]), in
Docker's lines: `80/tcp -> 0.0.0.0:8080`."""
from bocker.errors import BockerError, InvalidArgument


def _key(port):
    number, _, proto = port.partition("/")
    return (proto or "tcp", int(number) if number.isdigit() else 0, port)


def port_lines(record, private=None):
    """The lines `port` prints; with private (PORT[/PROTO]) only where
    that port is published (HOST_IP:HOST_PORT), else BockerError."""
    ports = (record.get("NetworkSettings") or {}).get("Ports") or {}
    if not isinstance(ports, dict):
        ports = {}
    if private is None:
        return [f"{p} -> {_address(b)}" for p in sorted(ports, key=_key)
                for b in _bindings(ports[p])]
    number, _, proto = str(private).partition("/")
    proto = proto or "tcp"
    if not (number.isascii() and number.isdigit() and 0 < int(number) < 65536) \
            or proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"Error: invalid port '{str(private)[:40]}'")
    wanted = f"{int(number)}/{proto}"
    found = [_address(b) for b in _bindings(ports.get(wanted))]
    if not found:
        raise BockerError(f"Error: No public port '{wanted}' published for {record['Id']}")
    return found


def _bindings(value):
    return [b for b in (value or []) if isinstance(b, dict)]


def _address(binding):
    ip = binding.get("HostIp") or "0.0.0.0"
    return f"{'[' + ip + ']' if ':' in ip else ip}:{binding.get('HostPort', '')}"
