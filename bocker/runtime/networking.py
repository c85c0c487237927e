"""A container's network, as the start path and finish use it: the
network flags checked and the published ports parsed once, bocker
setup's network.json read once, an address leased (--ip: that one),
eth0 wired into the child's netns with its ports published (any free
host port picked and claimed), or with --network container:NAME that
container's netns opened for the child to join; and all of it released
when the container has gone.  The kernel work is bocker.net.network's;
this module is the glue."""
import os

from bocker import ids, state, trace
from bocker.errors import BockerError, InvalidArgument, RunRefused

CONTAINER = "container:"
JOINED = "netjoined"    # in a container's directory: another joined its netns


def _network():
    from bocker.net import network  # lazy: --network none never loads it

    return network


def _ports():
    from bocker.net import ports

    return ports


def hostports_dir(paths):
    """Where the host ports picked for -p PORT and -P are claimed."""
    return os.path.join(paths.root, "hostports")


def macs_dir(paths):
    """Where --mac-address values are claimed."""
    return os.path.join(paths.root, "macs")


def parse_ports(req):
    """Check req's network flags (one line, before anything is made) and
    return -p's Bindings (net.ports).  Nothing is parsed when none is
    given: this is on every start path."""
    if req.network.startswith(CONTAINER):
        _check_joining(req)
    if not (req.ports or req.publish_all or req.expose or req.ip or req.mac_address
            or req.extra_hosts):
        return []
    ports = _ports()
    for spec in req.expose:
        ports.parse_expose(spec)
    if req.extra_hosts:
        from bocker.net import etcfiles

        for spec in req.extra_hosts:
            etcfiles.parse_add_host(spec)
    if req.network != "bridge":
        for flag, given in (("published ports (-p)", req.ports), ("-P", req.publish_all),
                            ("--ip", req.ip), ("--mac-address", req.mac_address)):
            if given:
                raise BockerError(f"{flag} need{'s' if flag[0] == '-' else ''} "
                                  "--network bridge")
    if req.mac_address:
        _network().check_mac(req.mac_address)
    if req.ip:
        import ipaddress

        from bocker.net import shown

        try:
            ipaddress.IPv4Address(req.ip)
        except ValueError:
            raise InvalidArgument(f"invalid --ip '{shown(req.ip)}': not an IPv4 address") from None
    return [b for spec in req.ports for b in ports.parse_publish(spec)]


def check_mode(value):
    """--network: bridge (or default), none, host or container:NAME."""
    if value == "default":
        return "bridge"
    if value in ("bridge", "none", "host"):
        return value
    if value.startswith(CONTAINER) and len(value) > len(CONTAINER):
        return value
    from bocker.net import shown

    raise InvalidArgument(f"invalid --network '{shown(value)}': bridge, none, host or "
                          "container:NAME")


def _check_joining(req):
    # Docker's conflicts: the joined namespace's own settings win.
    for flag, given in (("hostname", req.hostname), ("dns", req.dns),
                        ("custom host-to-IP mapping", req.extra_hosts),
                        ("mac-address", req.mac_address), ("ip", req.ip),
                        ("port publishing", req.ports or req.publish_all),
                        ("port exposing", req.expose)):
        if given:
            raise BockerError(f"conflicting options: {flag} and the network mode "
                              "(container:)")
    if any(s.startswith("net.") for s in req.sysctls):
        raise BockerError("--sysctl net.* would change the joined container's network: "
                          "refused with --network container:")
    if req.userns == "auto":
        raise BockerError("--network container: is not supported with --userns auto")


def resolve_mode(paths, req):
    """--network container:NAME as container:<ID> (Docker's NetworkMode);
    the container must exist (it must run when this one starts)."""
    if req.network.startswith(CONTAINER):
        from bocker.runtime import records

        name = req.network[len(CONTAINER):]
        try:
            req.network = CONTAINER + records.resolve(paths, name)
        except BockerError as e:
            from bocker.net import shown

            raise RunRefused(f"--network container:{shown(name)}: {shown(e, 200)}") from None


def join_target(paths, mode):
    """The running container that --network container:ID names: (its
    record, an fd of its network namespace).  Refused unless it runs; the
    fd is opened while its process is alive and still the one recorded,
    so it is that container's namespace."""
    from bocker.kernel import native
    from bocker.runtime import records

    target = mode[len(CONTAINER):]
    try:
        record = records.load(paths, target)
    except BockerError:
        raise RunRefused(f"cannot join the network of container {target}: "
                         "it no longer exists") from None
    st = record["State"]
    pid = st.get("Pid") if st.get("Running") else None
    if not pid or not records.alive(pid, st.get("PidStartTime")):
        raise RunRefused(f"cannot join the network of container {record['Name']}: "
                         "it is not running")
    pidfd = native.pidfd_open(pid)
    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            native.pidfd_send_signal(pidfd, 0)  # still that process: its netns
            if not records.alive(pid, st.get("PidStartTime")):
                raise ProcessLookupError
        except OSError:
            os.close(fd)
            raise RunRefused(f"cannot join the network of container {record['Name']}: "
                             "it is not running") from None
    finally:
        os.close(pidfd)
    # its release then deletes its veth: the namespace outlives it with us in it
    try:
        with open(os.path.join(paths.container(record["Id"]), JOINED), "w"):
            pass
    except FileNotFoundError:   # removed meanwhile
        os.close(fd)
        raise RunRefused(f"cannot join the network of container {record['Name']}: "
                         "it no longer exists") from None
    return record, fd


def network_config(paths):
    """The bridge network `bocker setup` made for this root."""
    from bocker.errors import NotSetUp

    try:
        return state.read_json(paths.network)
    except FileNotFoundError:
        raise NotSetUp(f"{_network().DEFAULT_BRIDGE} not found: run 'bocker setup'") from None


def lease_address(paths, cid, undo, network=None, req=None):
    """Check the bridge and lease an address (req.ip: that one); returns
    the network config plus "ip" and "mac" (req.mac_address, or None for
    the one derived from the address), the one copy of network.json this
    start uses."""
    network = network or _network()
    config = network_config(paths)
    network.check_ready(config["bridge"])
    want = req.ip if req is not None else None
    with trace.span("ipam lease", subnet=config["subnet"]) as sp:
        try:
            ip = network.lease(paths.leases, cid, config["subnet"], *([want] if want else []))
        except (network.SubnetFull, network.AddressTaken):
            _reclaim_stale_leases(paths, network)
            ip = network.lease(paths.leases, cid, config["subnet"], *([want] if want else []))
        sp.set(ip)
    undo.callback(network.release, paths.leases, cid)
    mac = req.mac_address if req is not None else None
    if mac:
        mac = _claim_mac(paths, cid, network.check_mac(mac), config["subnet"], network)
        undo.callback(_release_mac, paths, cid)
    return dict(config, ip=ip, mac=mac, hostports=hostports_dir(paths),
                containers=paths.containers)


def _claim_mac(paths, cid, mac, subnet, network):
    try:
        return network.claim_mac(macs_dir(paths), cid, mac, subnet)
    except network.AddressTaken:
        _ports().prune(macs_dir(paths), paths.containers)   # a crash's leftover?
        return network.claim_mac(macs_dir(paths), cid, mac, subnet)


def _release_mac(paths, cid):
    from bocker import claims

    claims.release(macs_dir(paths), cid)


def _reclaim_stale_leases(paths, network):
    # Leases nobody will use again, reclaimed when the subnet is full:
    # - listing the records finishes every container whose keeper is gone
    #   (a crash, a reboot), which gives its lease back;
    # - a container that has ended (exit.json written) but whose keeper
    #   has not finished it yet gives its lease back now, under its lock;
    # - a lease whose container has no directory (a crash in between) goes.
    # Never by State alone: a container being created, or started again,
    # holds its lease before its record says running, and dropping that
    # lease would give its address to a second container.
    from bocker.runtime import records

    records.list_all(paths)
    for owner in set(network.leases(paths.leases).values()):
        if ids.is_id(owner, "ps"):
            _release_if_ended(paths, owner, network)
    with state.locked(paths.lock):  # as prune_leftovers: no mkdir meanwhile
        existing = set(os.listdir(paths.containers))
        network.prune(paths.leases, existing)


def _release_if_ended(paths, cid, network):
    from bocker.errors import CorruptRecord
    from bocker.runtime import records

    with records.locked(paths, cid) as here:
        if not here:
            return
        try:
            stored = records.read_stored(paths, cid)
        except (FileNotFoundError, CorruptRecord):
            return
        # stored Running with exit.json: this run is over (a start again
        # removes exit.json before it marks the record running)
        if stored["State"].get("Running") and os.path.exists(records.exit_path(paths, cid)):
            network.release(paths.leases, cid)


def wire(cid, pid, net, ports, undo, network=None):
    """eth0 in the child's new network namespace (its host veth admitted
    to the anti-spoofing guard), and its published ports (Bindings: a
    host port still to pick is picked and claimed now); returns the
    record's NetworkSettings."""
    network = network or _network()
    netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with trace.span("netlink veth+addr+route", container=cid, ip=net["ip"],
                        bridge=net["bridge"], netns_fd=netns) as sp:
            extra = {"mac": net["mac"]} if net.get("mac") else {}
            settings = network.attach(cid, netns, net["ip"], net["subnet"], net["bridge"],
                                      net["table"], **extra)
            sp.set(settings["host_veth"])
    finally:
        os.close(netns)
    undo.callback(network.detach, cid, net["ip"], net["table"], mac=settings["mac"])
    return _network_settings(settings["ip"], settings["prefixlen"], settings["mac"],
                             settings["gateway"], net["bridge"], settings["host_veth"],
                             _publish(cid, net, ports, undo, network))


def _network_settings(ip, prefixlen, mac, gateway, bridge, host_veth, ports):
    """The record's NetworkSettings of a bridge container."""
    return {"IPAddress": ip, "IPPrefixLen": prefixlen, "MacAddress": mac, "Gateway": gateway,
            "Bridge": bridge, "HostVeth": host_veth, "Guarded": True, "Ports": ports}


def lease_slot(paths, cid, undo, req):
    """--network bridge from a network slot made ahead (net/pool.py), or
    None: the start then leases and wires as ever.  Only for what a slot
    is the same as: no --ip or --mac-address (a slot's address and MAC
    are its own), no user namespace (the caller's check: the slot's netns
    is the host user namespace's).  Returns (net as lease_address's, the
    slot); the slot's lease and veth are now cid's, undone as wire's."""
    if req.ip or req.mac_address:
        return None
    from bocker.net import pool

    slot = pool.take_slot(paths, cid)
    if slot is None:
        return None
    network = _network()
    undo.callback(network.release, paths.leases, cid)
    undo.callback(network.detach, cid, slot.ip, slot.table, mac=slot.mac)
    net = dict(bridge=slot.bridge, subnet=slot.subnet, table=slot.table, ip=slot.ip,
               mac=None, hostports=hostports_dir(paths), containers=paths.containers)
    return net, slot


def wire_slot(cid, slot, net, ports, undo, network=None):
    """wire() for a container on a slot: its eth0 is there already; its
    host veth is named for cid, up and guarded now (pool.activate), and
    its ports published (the address is the slot's); returns the
    record's NetworkSettings."""
    from bocker.net import pool

    pool.activate(slot, cid)   # its veth is named for cid now: slot.veth
    return _network_settings(slot.ip, slot.prefixlen, slot.mac, slot.gateway, slot.bridge,
                             slot.veth, _publish(cid, net, ports, undo, network or _network()))


def _publish(cid, net, ports, undo, network):
    """Publish ports (Bindings) to net's address; returns the record's
    NetworkSettings.Ports."""
    published = []
    if ports:
        with trace.span("nft publish", container=cid, ports=[str(p) for p in ports]):
            published, existing = _host_ports(cid, net, ports, undo)
            network.publish(cid, net["ip"], published, net["table"],
                            *([existing] if existing is not None else []))
        undo.callback(network.unpublish, cid, net["table"])
    by_port = {}
    for p in published:
        by_port.setdefault(f"{p.container_port}/{p.proto}", []).append(
            {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)})
    return by_port


def _host_ports(cid, net, bindings, undo):
    """(bindings as nat.Ports, the table's published ports or None if not
    listed): the ones with a host port to pick get a free one, claimed
    (released again by undo, or by release)."""
    from bocker.net import nat

    ports = _ports()
    if all(b.host_lo is not None and b.host_lo == b.host_hi for b in bindings):
        return [nat.Port(b.host_lo, b.container_port, b.proto, b.host_ip)
                for b in bindings], None
    ports.prune(net["hostports"], net["containers"])
    undo.callback(ports.release, net["hostports"], cid)
    existing = nat.published(net["table"])  # one listing, for the pick and the check
    return ports.allocate(net["hostports"], cid, bindings, existing), existing


def start_bindings(req, ports, exposed_ports):
    """What a start publishes: -p's Bindings and, with -P, every exposed
    port (Config.ExposedPorts) -p does not bind, on a free host port."""
    if not req.publish_all:
        return ports
    return _ports().bindings(req, exposed_ports)


def exposed_ports(req, image_config):
    """Config.ExposedPorts: the image's (validated), --expose's and -p's;
    {} at no cost when there are none."""
    if not (req.ports or req.expose or image_config.get("ExposedPorts")):
        return {}
    return _ports().exposed(req, image_config)


def port_bindings(req):
    """Docker's HostConfig.PortBindings of req (-p as asked).  A stored -p
    that does not parse is a ValueError: its record is corrupt."""
    if not req.ports:
        return {}
    try:
        return _ports().port_bindings(req)
    except BockerError as e:
        raise ValueError(str(e)) from None


def extra_hosts(paths, req):
    """The /etc/hosts lines of --add-host ('' for none); host-gateway is
    the bridge's address."""
    if not req.extra_hosts:
        return ""
    from bocker.net import etcfiles

    gateway = None
    if any(etcfiles.parse_add_host(h)[1] == etcfiles.HOST_GATEWAY for h in req.extra_hosts):
        gateway = _network().gateway(network_config(paths)["subnet"])
    return etcfiles.extra_hosts_text(req.extra_hosts, gateway)


def release(paths, record):
    """Give back the address (its lease and its admission to the
    anti-spoofing guard: the record then says Guarded false, so a second
    call has nothing to do) and the published ports of an exited
    container.  Its veth goes with its network namespace (the kernel
    removes the pair once the last process in it has gone)."""
    if record["Spec"].get("network", "bridge") != "bridge":
        return
    network = _network()
    spec = record["Spec"]
    if spec.get("ports") or spec.get("publish_all"):
        _ports().release(hostports_dir(paths), record["Id"])
    if spec.get("mac_address"):
        _release_mac(paths, record["Id"])
    joined = os.path.join(paths.container(record["Id"]), JOINED)
    if os.path.exists(joined):
        # another container lives in its netns (or did): the veth would
        # outlive this one, unguarded, with an address given back
        network.detach(record["Id"])
        os.unlink(joined)
    settings = record.get("NetworkSettings") or _unrecorded_settings(paths, record, network)
    try:
        table = network_config(paths)["table"]
    except BockerError:
        table = None    # torn down since: its tables, and what they held, are gone
    with trace.span("ipam release", container=record["Id"]):
        network.release(paths.leases, record["Id"])
        # The guard admits the address's MAC and IP: they go together.
        if settings.get("Guarded") and table:
            network.unguard(record["Id"], settings["IPAddress"], table,
                            settings.get("MacAddress"))
            settings["Guarded"] = False
    if settings.get("Ports") and table:
        with trace.span("nft unpublish", container=record["Id"]):
            network.unpublish(record["Id"], table)


def _unrecorded_settings(paths, record, network):
    """What a start cut short before its record was saved running may
    hold, named from its address lease: the guard's admission and, with
    -p, published ports (releasing either is a no-op if the start never
    got that far).  The monitor's finish of a container whose starter was
    killed gets here: without this, the guard entries and port rules of
    that address stayed in nftables for good."""
    ips = [ip for ip, owner in network.leases(paths.leases).items() if owner == record["Id"]]
    if not ips:
        return {}
    spec = record["Spec"]
    record["NetworkSettings"] = {"IPAddress": ips[0], "Guarded": True,
                                 "MacAddress": spec.get("mac_address") or network.mac_for(ips[0]),
                                 "Ports": {"any": []} if spec.get("ports") or spec.get(
                                     "publish_all") else {}}
    return record["NetworkSettings"]
