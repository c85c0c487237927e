"""Docker's network flags on the real kernel: -p PORT and IP::PORT (any
free host port), ranges, udp, -P with --expose, --ip, --mac-address,
--add-host (host-gateway too) and --network container:NAME.

Traffic only between the host's loopback and namespaces these tests made."""
import errno
import os
import socket
import subprocess
import time
import urllib.request

import pytest

from bocker.net import nat, network, ports

from conftest import BOCKER, wait_for
from netfixtures import free_port
from runfixtures import detach as _detach, inspect as _inspect

SERVE = ("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {port} -h /www")


def _get(url):
    """The body at url, retried while the server comes up; None if never."""
    for _ in range(50):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read()
        except OSError:
            time.sleep(0.1)
    return None


def _free_run(n):
    """n consecutive TCP ports nothing on the host holds now."""
    for _ in range(50):
        base = free_port()
        if base + n <= 65535 and all(ports.host_port_free("tcp", base + i)
                                     for i in range(n)):
            return base
    pytest.skip("no run of free ports")


def _claims(paths):
    try:
        return os.listdir(os.path.join(paths.root, "hostports"))
    except FileNotFoundError:
        return []


# ------------------------------------------------------------------ -p

def test_p_port_alone_takes_a_free_ephemeral_port_shown_everywhere(bocker, paths, net):
    cid = _detach(bocker, "-p", "80", "busybox", "sh", "-c", SERVE.format(text="any", port=80))
    try:
        info = _inspect(bocker, cid)
        binding = info["NetworkSettings"]["Ports"]["80/tcp"]
        assert len(binding) == 1 and binding[0]["HostIp"] == "0.0.0.0"
        host_port = int(binding[0]["HostPort"])
        lo, hi = ports.ephemeral_range()
        assert lo <= host_port <= hi
        assert info["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": ""}]}
        assert info["Config"]["ExposedPorts"] == {"80/tcp": {}}
        assert f"0.0.0.0:{host_port}->80/tcp" in bocker("ps", check=True).stdout
        assert _claims(paths) == [f"tcp-{host_port}"]
        assert _get(f"http://127.0.0.1:{host_port}/") == b"any\n"
    finally:
        bocker("rm", "-f", cid, check=True)
    assert _claims(paths) == []
    assert [c for _, c in nat.published(net["table"])] == []


def test_ip_with_empty_host_port_binds_that_address_only(bocker, net):
    cid = _detach(bocker, "-p", "127.0.0.1::80", "busybox", "sleep", "30")
    try:
        binding = _inspect(bocker, cid)["NetworkSettings"]["Ports"]["80/tcp"]
        assert binding[0]["HostIp"] == "127.0.0.1"
        published = [p for p, c in nat.published(net["table"]) if c == cid]
        assert published == [nat.Port(int(binding[0]["HostPort"]), 80, "tcp", "127.0.0.1")]
    finally:
        bocker("rm", "-f", cid, check=True)


def test_two_containers_asking_any_port_get_different_ones(bocker):
    procs = [subprocess.Popen([BOCKER, "run", "-d", "-p", "80", "-p", "81/udp", "busybox",
                               "sleep", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    cids = [out.strip() for code, out, _ in results if code == 0]
    try:
        assert len(cids) == 4, [err for _, _, err in results]
        tcp = [_inspect(bocker, c)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
               for c in cids]
        udp = [_inspect(bocker, c)["NetworkSettings"]["Ports"]["81/udp"][0]["HostPort"]
               for c in cids]
        assert len(set(tcp)) == 4 and len(set(udp)) == 4
    finally:
        for c in cids:
            bocker("rm", "-f", c, check=True)


def test_udp_mapping_is_a_udp_rule(bocker, net):
    port = free_port()
    cid = _detach(bocker, "-p", f"{port}:53/udp", "busybox", "sleep", "30")
    try:
        assert [p for p, c in nat.published(net["table"]) if c == cid] == [
            nat.Port(port, 53, "udp", None)]
        assert _inspect(bocker, cid)["NetworkSettings"]["Ports"] == {
            "53/udp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    finally:
        bocker("rm", "-f", cid, check=True)


def test_ranges_pair_up_and_a_host_range_gives_one_port(bocker, net):
    base = _free_run(3)
    cid = _detach(bocker, "-p", f"{base}-{base + 1}:80-81", "-p", f"{base + 2}-{base + 2}:82",
                  "busybox", "sh", "-c", SERVE.format(text="ranged", port=81))
    try:
        got = sorted((p.host_port, p.container_port) for p, c in nat.published(net["table"])
                     if c == cid)
        assert got == [(base, 80), (base + 1, 81), (base + 2, 82)]
        assert _get(f"http://127.0.0.1:{base + 1}/") == b"ranged\n"
    finally:
        bocker("rm", "-f", cid, check=True)
    # a host range for one container port: its first free port
    with socket.socket() as held:
        held.bind(("0.0.0.0", base))
        held.listen()
        cid = _detach(bocker, "-p", f"{base}-{base + 2}:80", "busybox", "sleep", "30")
    try:
        info = _inspect(bocker, cid)
        assert info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"] == str(base + 1)
        assert info["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == \
            f"{base}-{base + 2}"
    finally:
        bocker("rm", "-f", cid, check=True)


def test_mismatched_ranges_are_refused_as_docker_does(bocker):
    proc = bocker("run", "--rm", "-p", "8000-8001:80-82", "busybox", "true")
    assert proc.returncode == 125
    assert "invalid ranges specified for container and host ports: 80-82 and 8000-8001" \
        in proc.stderr


def test_publish_all_publishes_exposed_ports_on_free_host_ports(bocker, net):
    port = free_port()
    cid = _detach(bocker, "-P", "--expose", "80", "--expose", "7000-7001/udp",
                  "-p", f"{port}:90", "busybox", "sh", "-c", SERVE.format(text="all", port=80))
    try:
        info = _inspect(bocker, cid)
        assert info["Config"]["ExposedPorts"] == {"80/tcp": {}, "90/tcp": {}, "7000/udp": {},
                                                  "7001/udp": {}}
        assert info["HostConfig"]["PublishAllPorts"] is True
        bound = info["NetworkSettings"]["Ports"]
        assert sorted(bound) == ["7000/udp", "7001/udp", "80/tcp", "90/tcp"]
        assert bound["90/tcp"][0]["HostPort"] == str(port)   # -p wins over -P
        assert _get(f"http://127.0.0.1:{bound['80/tcp'][0]['HostPort']}/") == b"all\n"
        assert len([c for _, c in nat.published(net["table"]) if c == cid]) == 4
    finally:
        bocker("rm", "-f", cid, check=True)


def test_any_port_is_picked_again_at_each_start(bocker, paths):
    cid = _detach(bocker, "-p", "80", "busybox", "sleep", "30")
    try:
        bocker("stop", "-t", "0", cid, check=True)
        assert wait_for(lambda: _claims(paths) == [])
        bocker("start", cid, check=True)
        port = _inspect(bocker, cid)["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
        assert _claims(paths) == [f"tcp-{port}"]
    finally:
        bocker("rm", "-f", cid, check=True)


# --------------------------------------------------------- --ip, --mac-address

def _free_address(paths, net):
    taken = set(network.leases(paths.leases))
    return [ip for ip in network.candidates(net["subnet"]) if ip not in taken][-1]


def test_fixed_ip_and_mac_are_the_containers_and_guarded(bocker, paths, net):
    ip, mac = _free_address(paths, net), "02:11:22:33:44:55"
    cid = _detach(bocker, "--ip", ip, "--mac-address", mac.upper(), "busybox", "sleep", "30")
    try:
        info = _inspect(bocker, cid)["NetworkSettings"]
        assert (info["IPAddress"], info["MacAddress"]) == (ip, mac)
        out = bocker("exec", cid, "ip", "addr", "show", "eth0", check=True).stdout
        assert f"inet {ip}/" in out and f"link/ether {mac}" in out
        assert nat.guarded(net["table"])[network.veth_name(cid)] == (mac, ip)
        gw = network.gateway(net["subnet"])
        ping = bocker("exec", cid, "ping", "-c", "1", "-W", "2", gw)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        taken = bocker("run", "--rm", "--ip", ip, "busybox", "true")
        assert taken.returncode == 125 and f"address {ip} is already in use by {cid}" \
            in taken.stderr
        same_mac = bocker("run", "--rm", "--mac-address", mac, "busybox", "true")
        assert same_mac.returncode == 125 and f"MAC address {mac} is already in use by {cid}" \
            in same_mac.stderr
    finally:
        bocker("rm", "-f", cid, check=True)
    assert network.veth_name(cid) not in (nat.guarded(net["table"]) or {})


@pytest.mark.parametrize("which", ["outside", "gateway"])
def test_ip_off_the_subnet_is_refused(bocker, net, which):
    ip = "192.0.2.10" if which == "outside" else network.gateway(net["subnet"])
    proc = bocker("run", "--rm", "--ip", ip, "busybox", "true")
    assert proc.returncode == 125 and "not a container address of bocker's subnet" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ------------------------------------------------------------- --add-host

def test_add_host_lines_and_host_gateway(bocker, net):
    out = bocker("run", "--rm", "--add-host", "db:10.1.2.3", "--add-host",
                 "host.docker.internal:host-gateway", "--add-host", "six=[::1]",
                 "busybox", "cat", "/etc/hosts", check=True).stdout
    gw = network.gateway(net["subnet"])
    assert "10.1.2.3\tdb\n" in out and f"{gw}\thost.docker.internal\n" in out
    assert "::1\tsix\n" in out


# --------------------------------------------------- --network container:

def test_joining_a_containers_network(bocker, net):
    target = _detach(bocker, "--name", "netjoin-target", "busybox", "sh", "-c",
                     SERVE.format(text="shared", port=8080))
    try:
        tinfo = _inspect(bocker, target)
        ip = tinfo["NetworkSettings"]["IPAddress"]
        assert _get(f"http://{ip}:8080/") == b"shared\n"
        joined = bocker("run", "--rm", "--net", "container:netjoin-target", "busybox", "sh",
                        "-c", "wget -q -O- http://127.0.0.1:8080/ && hostname && "
                        "ip -4 -o addr show eth0 && cat /etc/hosts", check=True).stdout
        assert joined.startswith("shared\n")
        assert tinfo["Config"]["Hostname"] + "\n" in joined
        assert f" {ip}/" in joined
        # the joined container keeps its network when the joiner has gone
        assert _get(f"http://{ip}:8080/") == b"shared\n"
        cid = _detach(bocker, "--network", "container:netjoin-target", "busybox", "sleep", "30")
        try:
            info = _inspect(bocker, cid)
            assert info["HostConfig"]["NetworkMode"] == f"container:{target}"
            assert info["Config"]["Hostname"] == tinfo["Config"]["Hostname"]
        finally:
            bocker("rm", "-f", cid, check=True)
    finally:
        bocker("rm", "-f", target, check=True)


def test_joining_a_container_that_is_not_running_is_refused(bocker):
    target = _detach(bocker, "busybox", "true")
    try:
        bocker("wait", target)
        proc = bocker("run", "--rm", "--network", f"container:{target}", "busybox", "true")
        assert proc.returncode == 125 and "is not running" in proc.stderr
        missing = bocker("run", "--rm", "--network", "container:no-such-one", "busybox", "true")
        assert missing.returncode == 125 and "no-such-one" in missing.stderr
    finally:
        bocker("rm", "-f", target, check=True)


def test_a_joined_container_that_stops_takes_its_veth_with_it(bocker, net):
    target = _detach(bocker, "busybox", "sleep", "60")
    joiner = None
    try:
        joiner = _detach(bocker, "--network", f"container:{target}", "busybox", "sleep", "60")
        veth = network.veth_name(target)
        assert veth in os.listdir("/sys/class/net")
        bocker("stop", "-t", "0", target, check=True)
        # the joiner still holds the namespace; the veth must not outlive
        # the target's lease, unguarded
        assert wait_for(lambda: veth not in os.listdir("/sys/class/net"))
        assert _inspect(bocker, joiner)["State"]["Running"]
    finally:
        if joiner:
            bocker("rm", "-f", joiner, check=True)
        bocker("rm", "-f", target, check=True)


def test_the_shim_never_both_joins_and_makes_a_network_namespace():
    from bocker.kernel import native
    from netfixtures import netns

    with netns() as fd:
        for flags in (native.CLONE_NEWNET, native.CLONE_NEWUSER):
            with pytest.raises(OSError) as e:
                native.spawn("/", ["/bin/true"], ["PATH=/bin"], clone_flags=flags, netns_fd=fd)
            assert e.value.errno == errno.EINVAL
