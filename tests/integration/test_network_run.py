"""bocker run on the bridge network: addresses, reachability, NAT, ports.

Traffic only between the host and the namespaces these tests made."""
import os
import subprocess
import time
import urllib.request

from bocker import state
from bocker.net import nat, network

from conftest import BOCKER, own_leases
from netfixtures import free_port, ping
from runfixtures import detach as _detach, inspect as _inspect


def test_eth0_has_its_address_and_mac(bocker, net):
    cid = _detach(bocker, "busybox", "sleep", "30")
    try:
        info = _inspect(bocker, cid)["NetworkSettings"]
        ip, mac = info["IPAddress"], info["MacAddress"]
        assert mac == "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))
        assert info["Gateway"] == network.gateway(net["subnet"])
        out = bocker("exec", cid, "ip", "addr", "show", "eth0", check=True).stdout
        assert f"inet {ip}/{info['IPPrefixLen']}" in out and f"link/ether {mac}" in out
        route = bocker("exec", cid, "ip", "route", check=True).stdout
        assert f"default via {info['Gateway']} dev eth0" in route
        hosts = bocker("exec", cid, "cat", "/etc/hosts", check=True).stdout
        assert f"{ip}\t{cid}" in hosts
        ps_row = next(r for r in bocker("ps", check=True).stdout.splitlines() if r.startswith(cid))
        assert ip in ps_row
    finally:
        bocker("rm", "-f", cid, check=True)


def test_host_and_container_ping_each_other(bocker, net):
    cid = _detach(bocker, "busybox", "sleep", "30")
    try:
        ip = _inspect(bocker, cid)["NetworkSettings"]["IPAddress"]
        assert ping(None, ip)
        gw = network.gateway(net["subnet"])
        out = bocker("exec", cid, "ping", "-c", "1", "-W", "2", gw)
        assert out.returncode == 0, out.stdout + out.stderr
    finally:
        bocker("rm", "-f", cid, check=True)


def test_two_containers_reach_each_other(bocker):
    server = _detach(bocker, "busybox", "sh", "-c",
                     "mkdir /www && echo hello-from-server > /www/index.html && "
                     "exec httpd -f -p 80 -h /www")
    try:
        ip = _inspect(bocker, server)["NetworkSettings"]["IPAddress"]
        out = None
        for _ in range(50):
            out = bocker("run", "--rm", "busybox", "wget", "-q", "-O-", f"http://{ip}/")
            if out.returncode == 0:
                break
            time.sleep(0.1)
        assert out.stdout == "hello-from-server\n", out.stderr
    finally:
        bocker("rm", "-f", server, check=True)


def test_published_port_answers_on_host_loopback(bocker, paths, net):
    port = free_port()
    cid = _detach(bocker, "-p", f"{port}:80", "busybox", "sh", "-c",
                  "mkdir /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www")
    try:
        info = _inspect(bocker, cid)["NetworkSettings"]
        assert info["Ports"] == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
        assert f"0.0.0.0:{port}->80/tcp" in bocker("ps", check=True).stdout
        body = None
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.1)
        assert body == b"published\n"
        assert [c for _, c in nat.published(net["table"])] == [cid]
        bocker("stop", "-t", "0", cid, check=True)
        # the rules and the lease go when the container stops
        deadline = time.monotonic() + 10
        while nat.published(net["table"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert nat.published(net["table"]) == []
        assert cid not in network.leases(paths.leases).values()
    finally:
        bocker("rm", "-f", cid, check=True)
    assert cid not in network.leases(paths.leases).values()
    assert network.veth_name(cid) not in os.listdir("/sys/class/net")


def test_port_taken_twice_is_refused(bocker):
    port = free_port()
    cid = _detach(bocker, "-p", f"{port}:80", "busybox", "sleep", "30")
    try:
        proc = bocker("run", "--rm", "-p", f"{port}:81", "busybox", "true")
        assert proc.returncode == 125 and "already published" in proc.stderr
    finally:
        bocker("rm", "-f", cid, check=True)


def test_bad_port_spec(bocker):
    proc = bocker("run", "--rm", "-p", "99999:80", "busybox", "true")
    assert proc.returncode == 125 and "invalid port" in proc.stderr
    proc = bocker("run", "--rm", "--network", "none", "-p", f"{free_port()}:80", "busybox", "true")
    assert proc.returncode == 125 and "--network bridge" in proc.stderr


def test_thirty_concurrent_get_distinct_addresses(bocker, paths):
    procs = [subprocess.Popen([BOCKER, "run", "-d", "busybox", "sleep", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(30)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    ids = [out.strip() for code, out, _ in results if code == 0]
    try:
        assert len(ids) == 30, [err for _, _, err in results if err]
        addresses = [_inspect(bocker, cid)["NetworkSettings"]["IPAddress"] for cid in ids]
        assert len(set(addresses)) == 30
        # each container really holds its address on eth0
        out = bocker("exec", ids[-1], "ip", "-4", "-o", "addr", "show", "eth0").stdout
        assert f" {addresses[-1]}/" in out
        # (a live server's pool holds leases of its own, which come and go)
        assert own_leases(paths) == sorted(addresses)
    finally:
        bocker("rm", "-f", *ids)
    assert own_leases(paths) == []


def test_network_none_and_host(bocker):
    assert bocker("run", "--rm", "--network", "none", "busybox", "ls",
                  "/sys/class/net", check=True).stdout.split() == ["lo"]
    # the host's own namespace, by identity (its links come and go as
    # other test sessions run, so a listing would race them)
    out = bocker("run", "--rm", "--network", "host", "busybox", "readlink", "/proc/self/ns/net",
                 check=True).stdout
    assert out == os.readlink("/proc/self/ns/net") + "\n"


def test_resolv_conf_has_no_loopback_resolver(bocker):
    out = bocker("run", "--rm", "--dns", "192.0.2.53", "busybox", "cat", "/etc/resolv.conf",
                 check=True).stdout
    assert "nameserver 192.0.2.53" in out and "127." not in out


def test_not_set_up_says_so(tmp_path):
    proc = subprocess.run([BOCKER, "--root", str(tmp_path), "run", "busybox", "true"],
                          capture_output=True, text=True)
    assert proc.returncode == 125  # the run never started, as Docker's
    assert "run 'bocker setup'" in proc.stderr


def test_missing_bridge_says_so(bocker, paths, net):
    saved = state.read_json(paths.network)
    state.write_json(paths.network, dict(saved, bridge="bknobridge0"))
    try:
        proc = bocker("run", "--rm", "busybox", "true")
        assert (proc.returncode, proc.stderr) == (
            125, "bocker: bknobridge0 not found: run 'bocker setup'\n")
        assert bocker("ps", "-aq").stdout == ""
    finally:
        state.write_json(paths.network, saved)


def test_host_network_keeps_the_hosts_resolv_conf(bocker):
    out = bocker("run", "--rm", "--network", "host", "busybox", "cat", "/etc/resolv.conf",
                 check=True).stdout
    with open("/etc/resolv.conf") as f:
        assert out == f.read()
