"""Address allocation, names, -p parsing and resolv.conf: pure, no root."""
import ipaddress
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bocker.errors import BockerError, InvalidArgument
from bocker.net import nat, network

# Subnets from /30 (one usable address) up to /22 (1021), anywhere in IPv4.
subnets = st.builds(lambda addr, plen: ipaddress.IPv4Network((addr, plen), strict=False),
                    st.integers(0, 2**32 - 1), st.integers(22, 30))


@given(subnets)
def test_candidates_exclude_network_broadcast_and_gateway(net):
    got = list(network.candidates(net))
    special = {str(net.network_address), str(net.broadcast_address), network.gateway(net)}
    assert not special & set(got)
    assert len(got) == len(set(got)) == net.num_addresses - 3
    assert all(ipaddress.IPv4Address(ip) in net for ip in got)


@given(subnets, st.data())
def test_choose_never_returns_a_taken_or_special_address(net, data):
    pool = list(network.candidates(net))
    taken = set(data.draw(st.lists(st.sampled_from(pool), max_size=len(pool))))
    ip = network.choose(net, taken)
    if taken >= set(pool):
        assert ip is None
    else:
        assert ip in pool and ip not in taken


@settings(deadline=None)
@given(st.builds(lambda addr, plen: ipaddress.IPv4Network((addr, plen), strict=False),
                 st.integers(0, 2**32 - 1), st.integers(24, 30)))
def test_repeated_choice_fills_the_subnet_without_duplicates(net):
    taken = set()
    while (ip := network.choose(net, taken)) is not None:
        assert ip not in taken
        taken.add(ip)
    assert len(taken) == net.num_addresses - 3


def test_gateway_is_the_first_host():
    assert network.gateway("10.0.0.0/24") == "10.0.0.1"
    assert network.gateway("10.0.0.77/24") == "10.0.0.1"
    assert next(network.candidates("10.0.0.0/24")) == "10.0.0.2"


def test_too_small_subnet_is_a_user_error():
    with pytest.raises(BockerError, match="too small"):
        network.gateway("10.0.0.0/31")


@given(st.ip_addresses(v=4))
def test_mac_is_valid_locally_administered_and_from_the_address(ip):
    mac = network.mac_for(str(ip))
    parts = mac.split(":")
    assert len(parts) == 6 and all(len(p) == 2 for p in parts)
    first = int(parts[0], 16)
    assert first & 2 and not first & 1        # locally administered, unicast
    assert bytes(int(p, 16) for p in parts[2:]) == ip.packed


def test_mac_example():
    assert network.mac_for("172.17.0.50") == "02:42:ac:11:00:32"


@given(st.text(alphabet="0123456789abcdef", min_size=12, max_size=12))
def test_veth_name_fits_ifnamsiz_and_is_unique_per_id(hexid):
    name = network.veth_name(f"ps_{hexid}")
    assert len(name) <= 15 and name == "bk" + hexid


# ----------------------------------------------------------- leases (files)

@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["lease", "release"]), max_size=40),
       st.lists(st.integers(0, 7), min_size=40, max_size=40))
def test_leases_stay_distinct_through_any_sequence(tmp_path_factory, ops, who):
    d = str(tmp_path_factory.mktemp("leases"))
    subnet, held = "10.9.0.0/29", {}          # 5 usable addresses, 8 containers
    for op, n in zip(ops, who):
        cid = f"ps_{n:012x}"
        if op == "lease":
            try:
                ip = network.lease(d, cid, subnet)
            except network.SubnetFull:
                assert len(held) == 5 and cid not in held
                continue
            assert held.get(cid, ip) == ip    # the same container keeps its address
            held[cid] = ip
        else:
            network.release(d, cid)
            held.pop(cid, None)
        assert len(set(held.values())) == len(held)
        assert network.leases(d) == {ip: c for c, ip in held.items()}


def test_full_subnet_is_a_clear_error(tmp_path):
    ips = [network.lease(str(tmp_path), f"ps_{n:012x}", "10.9.0.0/30") for n in range(1)]
    assert ips == ["10.9.0.2"]
    with pytest.raises(network.SubnetFull, match="no free address in 10.9.0.0/30"):
        network.lease(str(tmp_path), "ps_00000000ffff", "10.9.0.0/30")


def test_release_is_idempotent_and_frees_the_address(tmp_path):
    d = str(tmp_path)
    a = network.lease(d, "ps_000000000001", "10.9.0.0/24")
    network.release(d, "ps_000000000001")
    network.release(d, "ps_000000000001")
    network.release(str(tmp_path / "missing"), "ps_000000000001")
    assert network.lease(d, "ps_000000000002", "10.9.0.0/24") == a
    assert os.readlink(os.path.join(d, a)) == "ps_000000000002"


# ------------------------------------------------------------------ -p

@pytest.mark.parametrize("spec, port", [
    ("8080:80", nat.Port(8080, 80, "tcp", None)),
    ("18080:80/tcp", nat.Port(18080, 80, "tcp", None)),
    ("53:53/udp", nat.Port(53, 53, "udp", None)),
    ("127.0.0.1:8080:80", nat.Port(8080, 80, "tcp", "127.0.0.1")),
    ("0.0.0.0:8080:80/udp", nat.Port(8080, 80, "udp", None)),
])
def test_parse_port(spec, port):
    assert network.parse_port(spec) == port


@pytest.mark.parametrize("spec", ["80", "a:80", "8080:80/sctp", "0:80", "8080:65536",
                                  "300.1.1.1:80:80", "1.2.3:80:80", ":80:80", "8080:80/",
                                  "::1:80:80", ""])
def test_parse_port_rejects(spec):
    with pytest.raises(InvalidArgument):
        network.parse_port(spec)


@given(st.integers(1, 65535), st.integers(1, 65535), st.sampled_from(["tcp", "udp"]),
       st.one_of(st.none(), st.ip_addresses(v=4).filter(lambda a: str(a) != "0.0.0.0")))
def test_parse_port_round_trips_through_str(host, ctr, proto, ip):
    port = nat.Port(host, ctr, proto, str(ip) if ip else None)
    assert network.parse_port(str(port)) == port


# -------------------------------------------------------- resolv.conf, hosts

def test_stub_resolvers_are_replaced_by_the_default():
    text = "# generated\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0\nsearch lan\n"
    out = network.filter_resolv(text)
    assert "127.0.0.53" not in out and "::1" not in out
    assert "options edns0" in out and "search lan" in out
    assert [l for l in out.splitlines() if l.startswith("nameserver")] == [
        f"nameserver {s}" for s in network.DEFAULT_DNS]


def test_real_resolvers_are_kept_and_dns_overrides():
    text = "nameserver 10.255.255.53\nnameserver 127.0.0.1\n"
    assert network.filter_resolv(text) == "nameserver 10.255.255.53\n"
    assert network.filter_resolv(text, ["1.1.1.1"]) == "nameserver 1.1.1.1\n"


def test_resolv_conf_reads_a_file(tmp_path):
    p = tmp_path / "resolv.conf"
    p.write_text("nameserver 127.0.0.11\n")
    assert network.resolv_conf(["9.9.9.9"], path=str(p)) == "nameserver 9.9.9.9\n"
    assert "nameserver 8.8.8.8" in network.resolv_conf(path=str(tmp_path / "none"))


def test_hosts_file_maps_hostname_to_address():
    text = network.hosts_file("web1", "10.0.0.5")
    assert "10.0.0.5\tweb1\n" in text and text.startswith("127.0.0.1\tlocalhost")


@pytest.mark.parametrize("subnet", ["10.0.0.0/33", "nonsense", "10.0.0/24", "fd00::/64"])
def test_invalid_subnet_is_a_user_error(subnet):
    with pytest.raises(InvalidArgument, match="invalid subnet"):
        network.gateway(subnet)


@pytest.mark.parametrize("name", ["", "a" * 16, "br/0", "br 0", "br:0", ".."])
def test_invalid_bridge_names_are_refused_before_the_kernel(name):
    with pytest.raises(InvalidArgument, match="invalid bridge name"):
        network._check_ifname(name)


def test_prune_drops_only_leases_of_gone_containers(tmp_path):
    d = str(tmp_path)
    ips = {cid: network.lease(d, cid, "10.9.0.0/24") for cid in
           ("ps_000000000001", "ps_000000000002", "ps_000000000003")}
    dropped = network.prune(d, {"ps_000000000002"})
    assert dropped == {ips["ps_000000000001"]: "ps_000000000001",
                       ips["ps_000000000003"]: "ps_000000000003"}
    assert network.leases(d) == {ips["ps_000000000002"]: "ps_000000000002"}
