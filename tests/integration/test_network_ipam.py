"""Leases from many processes at once: every one distinct."""
import multiprocessing
import os

from bocker.net import network

SUBNET = "10.213.0.0/24"


def _lease(args):
    lease_dir, cid, barrier = args
    barrier.wait()                       # all 30 race for the same first addresses
    return network.lease(lease_dir, cid, SUBNET)


def test_30_concurrent_leases_are_distinct(tmp_path):
    ctx = multiprocessing.get_context("fork")
    n = 30
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            ips = pool.map(_lease, [(str(tmp_path), f"ps_{i:012x}", barrier) for i in range(n)])
    assert len(set(ips)) == n
    assert network.gateway(SUBNET) not in ips
    assert network.leases(str(tmp_path)) == {ip: f"ps_{i:012x}" for i, ip in enumerate(ips)}
    for i in range(n):
        network.release(str(tmp_path), f"ps_{i:012x}")
    assert os.listdir(tmp_path) == []
