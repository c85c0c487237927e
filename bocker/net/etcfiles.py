"""The text of a container's /etc/resolv.conf and /etc/hosts: the host's
resolvers without the loopback stubs a container cannot reach (or --dns),
and its hostname on its address."""
import os

# Used when the host only knows stub resolvers on 127.0.0.0/8 (which a
# container cannot reach) and no --dns was given; Docker uses the same pair.
DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")


def _is_stub(server):
    """Whether a nameserver is on the host's loopback (a stub resolver a
    container cannot reach).  IPv4 is checked by hand: ipaddress costs
    1.2 ms to import, on every start, for the rare IPv6 line."""
    host = server.split("%", 1)[0]
    parts = host.split(".")
    if len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts):
        return parts[0] == "127"
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def filter_resolv(text, dns=None, search=None, options=None):
    """resolv.conf text for a container from the host's text.

    Nameservers on 127.0.0.0/8 or ::1 (stub resolvers such as
    systemd-resolved or dnsmasq) are unreachable from a container and are
    dropped.  `dns` (a list, from --dns) replaces all nameservers; if none
    is left, DEFAULT_DNS is used.  search/options lines are kept, unless
    `search` (--dns-search; ['.']: none at all) or `options` (--dns-option)
    replace them with one line each, as Docker's.
    """
    kept, servers = [], []
    for line in text.splitlines():
        words = line.split()
        if (search and words[:1] in (["search"], ["domain"])) or \
                (options and words[:1] == ["options"]):
            continue
        if words[:1] == ["nameserver"] and len(words) > 1:
            if not _is_stub(words[1]):
                servers.append(words[1])
        else:
            kept.append(line)
    if dns:
        servers = list(dns)
    elif not servers:
        servers = list(DEFAULT_DNS)
    while kept and not kept[-1].strip():
        kept.pop()
    if search and search != ["."]:
        kept.append("search " + " ".join(search))
    if options:
        kept.append("options " + " ".join(options))
    return "\n".join(kept + [f"nameserver {s}" for s in servers]) + "\n"


def resolv_conf(dns=None, path="/etc/resolv.conf", search=None, options=None):
    """The container's /etc/resolv.conf text (see filter_resolv).

    When the host's file lists only a stub resolver and systemd-resolved
    keeps the real upstream servers in /run/systemd/resolve/resolv.conf,
    that file is used instead, as Docker does.
    """
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    upstream = "/run/systemd/resolve/resolv.conf"
    if not dns and path == "/etc/resolv.conf" and os.path.exists(upstream):
        servers = [w[1] for w in (line.split() for line in text.splitlines())
                   if w[:1] == ["nameserver"] and len(w) > 1]
        if servers and all(_is_stub(s) for s in servers):
            with open(upstream) as f:
                text = f.read()
    return filter_resolv(text, dns, search, options)


def hosts_file(hostname, ip):
    """The container's /etc/hosts text: localhost and hostname -> ip."""
    lines = ["127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet",
             "ff00::0\tip6-mcastprefix",
             "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    if ip:
        lines.append(f"{ip}\t{hostname}")
    else:
        lines[0] += f" {hostname}"
    return "\n".join(lines) + "\n"


HOST_GATEWAY = "host-gateway"


def parse_add_host(spec):
    """An --add-host value NAME:IP (or NAME=IP; IP may be [v6] or
    host-gateway) as (name, ip); one line of InvalidArgument otherwise.
    The name must not hold whitespace or '#': it is a line of /etc/hosts."""
    from bocker.errors import InvalidArgument
    from bocker.net import shown

    text = spec if isinstance(spec, str) else ""
    cut = min((i for i in (text.find(":"), text.find("=")) if i >= 0), default=-1)
    name, ip = (text[:cut], text[cut + 1:]) if cut >= 0 else ("", "")
    if (not name or len(text) > 300 or any(c.isspace() or c == "#" or not c.isprintable()
                                           for c in name)):
        raise InvalidArgument(f"invalid --add-host '{shown(text)}': expected NAME:IP")
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    if ip == HOST_GATEWAY:
        return name, ip
    import ipaddress

    try:
        return name, str(ipaddress.ip_address(ip))
    except ValueError:
        raise InvalidArgument(f"invalid --add-host '{shown(text)}': '{shown(ip)}' is not an IP "
                              f"address or {HOST_GATEWAY}") from None


def extra_hosts_text(specs, gateway=None):
    """The /etc/hosts lines of --add-host values ('IP\\tNAME\\n' each);
    host-gateway is the bridge's address, gateway."""
    lines = []
    for spec in specs:
        name, ip = parse_add_host(spec)
        if ip == HOST_GATEWAY:
            if not gateway:
                from bocker.errors import NotSetUp

                raise NotSetUp("--add-host host-gateway needs bocker's bridge: "
                               "run 'bocker setup'")
            ip = gateway
        lines.append(f"{ip}\t{name}\n")
    return "".join(lines)
