"""A container's bridge network, as the start path and finish use it:
the published ports parsed once, bocker setup's network.json read once,
an address leased, eth0 wired into the child's netns with its ports
published, and all of it released when the container has gone.  The
kernel work is bocker.net.network's; this module is the glue."""
import os

from bocker import ids, state, trace
from bocker.errors import BockerError


def _network():
    from bocker.net import network  # lazy: --network none never loads it

    return network


def parse_ports(req):
    """req's -p values as network.Port objects (refused unless bridge)."""
    if not req.ports:
        return []
    if req.network != "bridge":
        raise BockerError("published ports (-p) need --network bridge")
    return [_network().parse_port(p) for p in req.ports]


def network_config(paths):
    """The bridge network `bocker setup` made for this root."""
    from bocker.errors import NotSetUp

    try:
        return state.read_json(paths.network)
    except FileNotFoundError:
        raise NotSetUp(f"{_network().DEFAULT_BRIDGE} not found: run 'bocker setup'") from None


def lease_address(paths, cid, undo, network=None):
    """Check the bridge and lease an address; returns the network config
    plus "ip", the one copy of network.json this start uses."""
    network = network or _network()
    config = network_config(paths)
    network.check_ready(config["bridge"])
    with trace.span("ipam lease", subnet=config["subnet"]) as sp:
        try:
            ip = network.lease(paths.leases, cid, config["subnet"])
        except network.SubnetFull:
            _reclaim_stale_leases(paths, network)
            ip = network.lease(paths.leases, cid, config["subnet"])
        sp.set(ip)
    undo.callback(network.release, paths.leases, cid)
    return dict(config, ip=ip)


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
    to the anti-spoofing guard), and its published ports; returns the
    record's NetworkSettings."""
    network = network or _network()
    netns = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with trace.span("netlink veth+addr+route", container=cid, ip=net["ip"],
                        bridge=net["bridge"], netns_fd=netns) as sp:
            settings = network.attach(cid, netns, net["ip"], net["subnet"], net["bridge"],
                                      net["table"])
            sp.set(settings["host_veth"])
    finally:
        os.close(netns)
    undo.callback(network.detach, cid, net["ip"], net["table"])
    if ports:
        with trace.span("nft publish", container=cid, ports=[str(p) for p in ports]):
            network.publish(cid, net["ip"], ports, net["table"])
        undo.callback(network.unpublish, cid, net["table"])
    return {"IPAddress": settings["ip"], "IPPrefixLen": settings["prefixlen"],
            "MacAddress": settings["mac"], "Gateway": settings["gateway"],
            "Bridge": net["bridge"], "HostVeth": settings["host_veth"], "Guarded": True,
            "Ports": {f"{p.container_port}/{p.proto}": [
                {"HostIp": p.host_ip or "0.0.0.0", "HostPort": str(p.host_port)}]
                for p in ports}}


def release(paths, record):
    """Give back the address (its lease and its admission to the
    anti-spoofing guard: the record then says Guarded false, so a second
    call has nothing to do) and the published ports of an exited
    container.  Its veth goes with its network namespace (the kernel
    removes the pair once the last process in it has gone)."""
    if record["Spec"].get("network", "bridge") != "bridge":
        return
    network = _network()
    settings = record.get("NetworkSettings") or _unrecorded_settings(paths, record, network)
    try:
        table = network_config(paths)["table"]
    except BockerError:
        table = None    # torn down since: its tables, and what they held, are gone
    with trace.span("ipam release", container=record["Id"]):
        network.release(paths.leases, record["Id"])
        # The guard admits the address's MAC and IP: they go together.
        if settings.get("Guarded") and table:
            network.unguard(record["Id"], settings["IPAddress"], table)
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
    record["NetworkSettings"] = {"IPAddress": ips[0], "Guarded": True,
                                 "Ports": {"any": []} if record["Spec"].get("ports") else {}}
    return record["NetworkSettings"]
