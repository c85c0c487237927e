"""Docker's network flags without root: -p's forms, --expose, the image's
ExposedPorts, host port picking, --ip, --mac-address, --add-host and
--network's modes (hypothesis where the inputs vary)."""
import os
import random

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bocker import claims
from bocker.errors import BockerError, InvalidArgument
from bocker.net import etcfiles, ipam, nat, ports
from bocker.net.ports import Binding
from bocker.runtime import networking, recordshape, spec


REFUSED = object()   # not None: a parser that returned None must still fail its test


def _or_refused(parse, *args, **kwargs):
    """parse(*args, **kwargs), or REFUSED where it refuses: a refusal must
    be one line (it is printed as the whole of bocker's error)."""
    try:
        return parse(*args, **kwargs)
    except InvalidArgument as e:
        assert "\n" not in str(e)
        return REFUSED



# ------------------------------------------------------------------ -p

@pytest.mark.parametrize("text, bindings", [
    ("80", [Binding(80)]),
    (":80", [Binding(80)]),
    ("80/udp", [Binding(80, "udp")]),
    ("80/SCTP", [Binding(80, "sctp")]),
    ("127.0.0.1::80", [Binding(80, "tcp", "127.0.0.1")]),
    ("0.0.0.0::80", [Binding(80)]),
    ("8080:80", [Binding(80, "tcp", None, 8080, 8080)]),
    ("10.1.2.3:8080:80/udp", [Binding(80, "udp", "10.1.2.3", 8080, 8080)]),
    ("8000-8002:80-82", [Binding(80, "tcp", None, 8000, 8000), Binding(81, "tcp", None, 8001, 8001),
                         Binding(82, "tcp", None, 8002, 8002)]),
    ("8000-8010:80", [Binding(80, "tcp", None, 8000, 8010)]),
    ("80-81", [Binding(80), Binding(81)]),
    ("1.2.3.4::80-81/udp", [Binding(80, "udp", "1.2.3.4"), Binding(81, "udp", "1.2.3.4")]),
])
def test_docker_forms(text, bindings):
    assert ports.parse_publish(text) == bindings


@pytest.mark.parametrize("text, message", [
    ("8000-8001:80-82", "invalid ranges specified for container and host ports: 80-82 and "
                        "8000-8001"),
    ("", "invalid container port ''"),
    ("80/", "no protocol after '/'"),
    ("80/icmp", "invalid protocol 'icmp'"),
    ("0", "invalid port 0"),
    ("65536", "invalid port 65536"),
    ("82-80", "invalid range '82-80'"),
    ("1.2.3.4.5:80:80", "invalid host address '1.2.3.4.5'"),
    ("01.2.3.4::80", "invalid host address '01.2.3.4'"),
    ("[::1]:80:80", "IPv4 only"),
    ("a:80", "invalid host port 'a'"),
    ("1-2000", "more than 1024 ports"),
])
def test_refusals_say_why_in_one_line(text, message):
    with pytest.raises(InvalidArgument, match=None) as e:
        ports.parse_publish(text)
    assert message in str(e.value) and "\n" not in str(e.value)


@given(st.one_of(st.none(), st.ip_addresses(v=4).map(str)),
       st.one_of(st.none(), st.tuples(st.integers(1, 65000), st.integers(0, 5))),
       st.integers(1, 65000), st.integers(0, 5), st.sampled_from([None, "tcp", "udp", "sctp"]))
def test_generated_specs_parse_as_docker_pairs_them(ip, host, ctr, width, proto):
    host_text = "" if host is None else (f"{host[0]}" if not host[1] else
                                         f"{host[0]}-{host[0] + host[1]}")
    ctr_text = f"{ctr}" if not width else f"{ctr}-{ctr + width}"
    text = (f"{ip}:{host_text}:" if ip else f"{host_text}:" if host_text else "") + ctr_text
    text += f"/{proto}" if proto else ""
    if host and width and host[1] != width:
        with pytest.raises(InvalidArgument, match="invalid ranges"):
            ports.parse_publish(text)
        return
    got = ports.parse_publish(text)
    assert [b.container_port for b in got] == list(range(ctr, ctr + width + 1))
    assert {b.proto for b in got} == {proto or "tcp"}
    assert {b.host_ip for b in got} == {None if ip in (None, "0.0.0.0") else ip}
    if host is None:
        assert all(b.host_lo is None for b in got)
    elif width:
        assert [b.host_lo for b in got] == list(range(host[0], host[0] + width + 1))
    else:
        assert (got[0].host_lo, got[0].host_hi) == (host[0], host[0] + host[1])


@given(st.text(alphabet="0123456789:-./tcpudsP[]ab ", max_size=30))
@example("1.2.3.4:8080:80:81")
@example("::80")
def test_any_text_is_bindings_or_refused(text):
    got = _or_refused(ports.parse_publish, text)
    if got is REFUSED:
        return
    assert got and len(got) <= ports.MAX_EXPOSED
    for b in got:
        assert 1 <= b.container_port <= 65535 and b.proto in ports.PROTOS
        assert b.host_lo is None or 1 <= b.host_lo <= b.host_hi <= 65535


def test_port_bindings_are_dockers_hostconfig():
    req = spec.RunRequest("img", ports=["80", "127.0.0.1:8080:81/udp", "9000-9002:90"])
    assert ports.port_bindings(req) == {
        "80/tcp": [{"HostIp": "", "HostPort": ""}],
        "81/udp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
        "90/tcp": [{"HostIp": "", "HostPort": "9000-9002"}]}


# ---------------------------------------------------- --expose, ExposedPorts, -P

def test_expose_forms():
    assert ports.parse_expose("80") == ["80/tcp"]
    assert ports.parse_expose("53/UDP") == ["53/udp"]
    assert ports.parse_expose("7000-7002/sctp") == ["7000/sctp", "7001/sctp", "7002/sctp"]
    for bad in ("", "x", "80/", "0", "1-5000", "80/icmp"):
        with pytest.raises(InvalidArgument):
            ports.parse_expose(bad)


@pytest.mark.parametrize("value", [
    [80], "80/tcp", {"80/tcp": {}, "x/tcp": {}}, {80: {}}, {"80/icmp": {}}, {"0/tcp": {}},
    {"70000": {}}, {f"{p}/tcp": {} for p in range(1, 1100)}, {"80/tcp\n": {}},
])
def test_hostile_image_exposed_ports_are_refused(value):
    with pytest.raises(BockerError, match="the image's ExposedPorts"):
        ports.image_exposed({"ExposedPorts": value})


def test_image_exposed_ports_take_tcp_by_default():
    assert ports.image_exposed({"ExposedPorts": {"80": {}, "53/udp": None}}) == ["80/tcp",
                                                                                  "53/udp"]
    assert ports.image_exposed({}) == [] == ports.image_exposed({"ExposedPorts": None})


def test_exposed_ports_merge_image_expose_and_publish():
    req = spec.RunRequest("img", ports=["8080:80", "90/udp"], expose=["7000-7001"])
    assert ports.exposed(req, {"ExposedPorts": {"443/tcp": {}, "80/tcp": {}}}) == {
        "80/tcp": {}, "90/udp": {}, "443/tcp": {}, "7000/tcp": {}, "7001/tcp": {}}


def test_the_record_stores_exposed_ports_and_hostconfig_shows_the_flags():
    req = spec.RunRequest("img", ["true"], ports=["80"], publish_all=True, expose=["53/udp"],
                          extra_hosts=["db:10.1.1.1"])
    record = recordshape.new_record("ps_000000000001", req, "img_1",
                                    {"ExposedPorts": {"443/tcp": {}}})
    assert record["Config"]["ExposedPorts"] == {"53/udp": {}, "80/tcp": {}, "443/tcp": {}}
    host = recordshape.host_config(recordshape.request(record), {})
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": ""}]}
    assert host["PublishAllPorts"] is True and host["ExtraHosts"] == ["db:10.1.1.1"]


def test_an_old_record_without_the_new_fields_loads_with_defaults():
    old = spec.RunRequest("img").to_dict()
    for field in ("publish_all", "expose", "ip", "mac_address", "extra_hosts"):
        del old[field]
    req = spec.RunRequest.from_dict(old)
    assert (req.publish_all, req.expose, req.ip, req.mac_address, req.extra_hosts) == (
        False, [], None, None, [])


def test_publish_all_adds_the_exposed_ports_minus_the_bound_ones():
    req = spec.RunRequest("img", ports=["8080:80"], publish_all=True)
    got = ports.bindings(req, {"80/tcp": {}, "53/udp": {}})
    assert got == [Binding(80, "tcp", None, 8080, 8080), Binding(53, "udp")]
    assert networking.start_bindings(spec.RunRequest("img"), ["as", "given"], {"1/tcp": {}}) \
        == ["as", "given"]


# ------------------------------------------------------------ host ports

def _published(*items):
    return [(nat.Port(h, 1, proto, ip), "ps_other") for h, proto, ip in items]


def test_allocate_picks_claims_and_skips_what_is_taken(tmp_path):
    d = str(tmp_path / "hostports")
    os.makedirs(d)
    os.symlink("ps_other", os.path.join(d, "tcp-40001"))        # claimed by another
    held = {("tcp", 40002)}                                       # a host socket's
    free = lambda proto, port, ip: (proto, port) not in held      # noqa: E731
    got = ports.allocate(d, "ps_me", [Binding(80), Binding(81, "udp"), Binding(82, "tcp", None,
                                                                               9000, 9000)],
                         _published((40003, "tcp", None), (40000, "udp", "1.2.3.4")),
                         free=free, span=(40000, 40005), rng=random.Random(0))
    assert got[2] == nat.Port(9000, 82, "tcp", None)            # fixed: as it is
    assert got[0].host_port in (40000, 40004, 40005)
    assert got[1].host_port != 40000 and 40000 <= got[1].host_port <= 40005
    mine = {n for n, o in claims.claims(d).items() if o == "ps_me"}
    assert mine == {f"tcp-{got[0].host_port}", f"udp-{got[1].host_port}"}


def test_a_host_range_takes_its_first_free_port_and_a_full_one_is_refused(tmp_path):
    d = str(tmp_path)
    got = ports.allocate(d, "ps_a", [Binding(80, "tcp", None, 5000, 5002)], [],
                         free=lambda *a: a[1] != 5000)
    assert got == [nat.Port(5001, 80, "tcp", None)]
    with pytest.raises(BockerError, match="no free host port for 80/tcp in 5000-5001"):
        ports.allocate(d, "ps_b", [Binding(81), Binding(80, "tcp", None, 5000, 5001)], [],
                       free=lambda *a: a[1] != 5000, span=(6000, 6001))
    assert set(claims.claims(d).values()) == {"ps_a"}            # ps_b's were given back


@given(st.integers(2, 6), st.randoms(use_true_random=False))
def test_many_containers_never_share_a_picked_port(tmp_path_factory, n, rng):
    d = str(tmp_path_factory.mktemp("hp"))
    picked = [ports.allocate(d, f"ps_{i:012x}", [Binding(80)], [], free=lambda *a: True,
                             span=(41000, 41007), rng=rng)[0].host_port for i in range(n)]
    assert len(set(picked)) == n


def test_prune_drops_only_claims_of_gone_containers(tmp_path):
    d, containers = str(tmp_path / "hp"), tmp_path / "containers"
    os.makedirs(d)
    (containers / "ps_here").mkdir(parents=True)
    os.symlink("ps_here", os.path.join(d, "tcp-1"))
    os.symlink("ps_gone", os.path.join(d, "tcp-2"))
    assert ports.prune(d, str(containers)) == {"tcp-2": "ps_gone"}
    assert claims.claims(d) == {"tcp-1": "ps_here"}


def test_ephemeral_range_falls_back_to_the_kernels_default(tmp_path):
    bad = tmp_path / "range"
    bad.write_text("junk\n")
    assert ports.ephemeral_range(str(bad)) == ports.EPHEMERAL
    bad.write_text("40000\t50000\n")
    assert ports.ephemeral_range(str(bad)) == (40000, 50000)


# ------------------------------------------------------ --ip, --mac-address

def test_fixed_ip_is_leased_or_refused(tmp_path):
    d = str(tmp_path)
    assert ipam.lease(d, "ps_a", "10.9.0.0/24", "10.9.0.77") == "10.9.0.77"
    assert ipam.lease(d, "ps_a", "10.9.0.0/24", "10.9.0.77") == "10.9.0.77"   # again: its own
    with pytest.raises(ipam.AddressTaken, match="10.9.0.77 is already in use by ps_a"):
        ipam.lease(d, "ps_b", "10.9.0.0/24", "10.9.0.77")
    for bad in ("10.9.1.5", "10.9.0.1", "10.9.0.0", "10.9.0.255"):
        with pytest.raises(InvalidArgument, match="not a container address"):
            ipam.lease(d, "ps_b", "10.9.0.0/24", bad)
    assert ipam.lease(d, "ps_c", "10.9.0.0/24") == "10.9.0.2"    # the pool skips it


@given(st.text(max_size=20))
@example("02-42-AC-11-00-02")
def test_mac_is_normalized_or_refused(text):
    mac = _or_refused(ipam.check_mac, text)
    if mac is REFUSED:
        return
    assert len(mac) == 17 and mac == mac.lower() and not int(mac[:2], 16) & 1


def test_mac_claims(tmp_path):
    d = str(tmp_path)
    assert ipam.claim_mac(d, "ps_a", "02:11:22:33:44:55", "10.9.0.0/24") == "02:11:22:33:44:55"
    assert ipam.claim_mac(d, "ps_a", "02:11:22:33:44:55", "10.9.0.0/24")
    with pytest.raises(ipam.AddressTaken, match="already in use by ps_a"):
        ipam.claim_mac(d, "ps_b", "02:11:22:33:44:55", "10.9.0.0/24")
    with pytest.raises(InvalidArgument, match="gives it to the container at 10.9.0.7"):
        ipam.claim_mac(d, "ps_b", ipam.mac_for("10.9.0.7"), "10.9.0.0/24")
    assert ipam.claim_mac(d, "ps_b", ipam.mac_for("10.8.0.7"), "10.9.0.0/24")


# ------------------------------------------------------------ --add-host

@pytest.mark.parametrize("text, pair", [
    ("db:10.1.2.3", ("db", "10.1.2.3")),
    ("db=10.1.2.3", ("db", "10.1.2.3")),
    ("six:::1", ("six", "::1")),
    ("six=[::1]", ("six", "::1")),
    ("gw:host-gateway", ("gw", "host-gateway")),
])
def test_add_host_forms(text, pair):
    assert etcfiles.parse_add_host(text) == pair


@given(st.text(max_size=40))
@example("a b:1.2.3.4")
@example("a\n:1.2.3.4")
def test_add_host_never_breaks_a_hosts_line(text):
    line = _or_refused(etcfiles.extra_hosts_text, [text], gateway="10.0.0.1")
    if line is REFUSED:
        return
    assert line.count("\n") == 1 and len(line.split("\t")) == 2
    assert not any(c.isspace() for c in line.split("\t")[1].rstrip("\n"))


def test_host_gateway_needs_the_bridge():
    assert etcfiles.extra_hosts_text(["gw:host-gateway", "x:1.1.1.1"], "10.0.0.1") == \
        "10.0.0.1\tgw\n1.1.1.1\tx\n"
    with pytest.raises(BockerError, match="host-gateway needs bocker's bridge"):
        etcfiles.extra_hosts_text(["gw:host-gateway"], None)


# ------------------------------------------------------------ --network

@pytest.mark.parametrize("value, mode", [("bridge", "bridge"), ("default", "bridge"),
                                         ("none", "none"), ("host", "host"),
                                         ("container:web", "container:web")])
def test_network_modes(value, mode):
    assert networking.check_mode(value) == mode


@pytest.mark.parametrize("value", ["", "container:", "bogus", "Bridge"])
def test_bad_network_modes(value):
    with pytest.raises(InvalidArgument, match="invalid --network"):
        networking.check_mode(value)


@pytest.mark.parametrize("option, flag", [
    ({"hostname": "h"}, "hostname"), ({"dns": ["1.1.1.1"]}, "dns"),
    ({"extra_hosts": ["a:1.1.1.1"]}, "custom host-to-IP mapping"),
    ({"mac_address": "02:00:00:00:00:01"}, "mac-address"), ({"ip": "10.0.0.5"}, "ip"),
    ({"ports": ["80"]}, "port publishing"), ({"publish_all": True}, "port publishing"),
    ({"expose": ["80"]}, "port exposing")])
def test_joining_a_container_conflicts_as_docker(option, flag):
    req = spec.RunRequest("img", network="container:web", userns="host", **option)
    with pytest.raises(BockerError, match=f"conflicting options: {flag} and the network mode"):
        networking.parse_ports(req)


def test_joining_refuses_net_sysctls_and_userns_auto():
    with pytest.raises(BockerError, match="net"):
        networking.parse_ports(spec.RunRequest("img", network="container:web", userns="host",
                                               sysctls=["net.ipv4.ip_forward=1"]))
    with pytest.raises(BockerError, match="--userns auto"):
        networking.parse_ports(spec.RunRequest("img", network="container:web", userns="auto"))


@pytest.mark.parametrize("option, message", [
    ({"ports": ["80"]}, "published ports (-p) need --network bridge"),
    ({"publish_all": True}, "-P needs --network bridge"),
    ({"ip": "10.0.0.5"}, "--ip needs --network bridge"),
    ({"mac_address": "02:00:00:00:00:01"}, "--mac-address needs --network bridge")])
def test_bridge_only_flags(option, message):
    with pytest.raises(BockerError) as e:
        networking.parse_ports(spec.RunRequest("img", network="host", userns="host", **option))
    assert message in str(e.value)


def test_no_network_flag_parses_nothing():
    assert networking.parse_ports(spec.RunRequest("img", userns="host")) == []


def test_a_stored_port_that_does_not_parse_makes_the_record_corrupt():
    with pytest.raises(ValueError, match="invalid port mapping"):
        networking.port_bindings(spec.RunRequest("img", ports=["80:80:80:80"]))
