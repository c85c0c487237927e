"""Container names as claims, corrupt records, whole writes (no root)."""
import json
import multiprocessing
import os
import resource
import signal

import pytest
from hypothesis import given, settings, strategies as st

from bocker import state
from bocker.errors import Conflict, CorruptRecord, NoSuchContainer
from bocker.image import images
from bocker.runtime import names, records
from bocker.state import Paths


def _paths(tmp_path):
    p = Paths(str(tmp_path))
    os.makedirs(p.containers)
    return p


def _container(p, cid, name=None):
    os.mkdir(p.container(cid))
    record = {"Id": cid, "Name": name or cid, "Created": 1.0, "Image": "img_000000000000",
              "Config": {"Cmd": ["true"], "Env": []}, "IdMaps": {},
              "State": {"Status": "exited", "Running": False, "Pid": 0},
              "NetworkSettings": {}, "Spec": {"image": "busybox", "command": ["true"]}}
    state.write_json(records.record_path(p, cid), record)
    return cid


# ------------------------------------------------------------ names

def test_one_claim_per_name_and_it_comes_back_after_release(tmp_path):
    p = _paths(tmp_path)
    a, b = _container(p, "ps_00000000000a"), _container(p, "ps_00000000000b")
    names.claim(p, "web", a)
    with pytest.raises(Conflict, match=f'"/web" is already in use by container "{a}"') as e:
        names.claim(p, "web", b)
    assert e.value.exit_code == 125
    names.release(p, b, "web")               # not b's: kept
    assert names.claimed(p) == {"web": a}
    names.release(p, a, "web")
    names.claim(p, "web", b)
    assert names.claimed(p) == {"web": b}


@pytest.mark.parametrize("name", ["../containers/x", "..", ".", "a/b", "a\0b"])
def test_releasing_a_name_no_entry_has_drops_nothing(tmp_path, name):
    # a record's Name is hostile input: release never leaves the names directory
    p = _paths(tmp_path)
    a = _container(p, "ps_00000000000a")
    names.claim(p, "web", a)
    os.symlink(a, os.path.join(p.root, "containers", "x"))  # a link owned by a, outside
    names.release(p, a, name)
    assert names.claimed(p) == {"web": a}
    assert os.path.islink(os.path.join(p.root, "containers", "x"))


def test_a_stale_claim_is_taken_over(tmp_path):
    p = _paths(tmp_path)
    names.claim(p, "db", "ps_0000000000de")  # its directory never existed: a crash
    names.claim(p, "db", _container(p, "ps_0000000000df"))
    assert names.claimed(p) == {"db": "ps_0000000000df"}


def test_names_of_an_older_root_are_claimed_from_its_records(tmp_path):
    p = _paths(tmp_path)
    old = _container(p, "ps_000000000001", name="old")
    _container(p, "ps_000000000002")       # unnamed: its ID is its name, no claim
    with pytest.raises(Conflict):
        names.claim(p, "old", _container(p, "ps_000000000003"))
    assert names.claimed(p) == {"old": old}


def _race(args):
    root, cid, barrier = args
    p = Paths(root)
    os.mkdir(p.container(cid))
    barrier.wait()
    try:
        names.claim(p, "same", cid)
        return cid
    except Conflict:
        return None


def test_of_many_claims_at_once_one_wins(tmp_path):
    p = _paths(tmp_path)
    ctx = multiprocessing.get_context("fork")
    n = 12
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            won = pool.map(_race, [(p.root, f"ps_{i:012x}", barrier) for i in range(n)])
    winners = [w for w in won if w]
    assert len(winners) == 1 and names.claimed(p) == {"same": winners[0]}


def test_prune_drops_claims_of_gone_containers(tmp_path):
    p = _paths(tmp_path)
    keep = _container(p, "ps_0000000000aa")
    names.claim(p, "kept", keep)
    names.claim(p, "gone", "ps_0000000000bb")
    assert names.prune(p, {keep}) == {"gone": "ps_0000000000bb"}
    assert names.claimed(p) == {"kept": keep}


# ------------------------------------------------------------ corrupt records

@pytest.mark.parametrize("text", [b"", b"\x00garbage{", b'{"Id": "ps_0000000000c0", "Na',
                                  b"[]", b'"a string"', b'{"Id": "ps_000000000bad"}',
                                  b"\xff\xfe", b'{"Id": "ps_0000000000c0", "State": 1}'])
def test_a_corrupt_container_record_is_named(tmp_path, text):
    p = _paths(tmp_path)
    good = _container(p, "ps_0000000000c1", name="good")
    bad = _container(p, "ps_0000000000c0", name="bad")
    with open(records.record_path(p, bad), "wb") as f:
        f.write(text)
    with pytest.raises(CorruptRecord) as e:
        records.load(p, bad)
    assert bad in str(e.value) and records.record_path(p, bad) in str(e.value)
    assert "\n" not in str(e.value)
    broken = []
    assert [r["Id"] for r in records.list_all(p, on_broken=broken.append)] == [good]
    assert [b.ident for b in broken] == [bad]
    assert records.resolve(p, bad) == bad and records.resolve(p, "good") == good
    with pytest.raises(NoSuchContainer):
        records.resolve(p, "ps_0000000000ff")


@given(st.binary(max_size=200))
@settings(max_examples=60, deadline=None)
def test_any_bytes_as_a_record_are_a_record_or_named_corrupt(tmp_path_factory, data):
    p = _paths(tmp_path_factory.mktemp("r"))
    cid = _container(p, "ps_0000000000e0")
    with open(records.record_path(p, cid), "wb") as f:
        f.write(data)
    with pytest.raises(CorruptRecord):
        records.load(p, cid)


def test_a_corrupt_image_record_is_named(tmp_path):
    p = Paths(str(tmp_path))
    for image_id, body in (("img_000000000001", {"id": "img_000000000001", "created": 1.0,
                                                 "names": ["busybox:latest"], "source": "x",
                                                 "config": {}}),
                           ("img_000000000002", None)):
        os.makedirs(p.image(image_id))
        path = os.path.join(p.image(image_id), "image.json")
        if body:
            state.write_json(path, body)
        else:
            with open(path, "wb") as f:
                f.write(b'{"id": "img_0000')
    broken = []
    assert [r["id"] for r in images.list_all(p, broken.append)] == ["img_000000000001"]
    assert [b.ident for b in broken] == ["img_000000000002"]
    assert images.resolve(p, "busybox") == "img_000000000001"
    assert images.resolve(p, "img_000000000002") == "img_000000000002"
    with pytest.raises(CorruptRecord, match="img_000000000002: .*image.json is corrupt"):
        images.load(p, "img_000000000002")


# ------------------------------------------------------------ whole writes

def _write_with_fsize_limit(path, data, limit):
    # RLIMIT_FSIZE makes the kernel take part of a write and refuse the
    # rest (EFBIG), as a full filesystem does with ENOSPC
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            state.write_json(path, data)
        except OSError:
            code = 3
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_a_cut_short_write_leaves_the_old_file_and_no_temp_file(tmp_path):
    path = str(tmp_path / "container.json")
    state.write_json(path, {"old": True})
    assert _write_with_fsize_limit(path, {"new": "x" * 10000}, 4096) == 3
    assert state.read_json(path) == {"old": True}
    assert os.listdir(tmp_path) == ["container.json"]
    assert _write_with_fsize_limit(path, {"new": "x" * 100}, 4096) == 0
    assert json.loads(open(path).read()) == {"new": "x" * 100}
