"""state.locked: exclusive between threads and processes, re-entrant in
the thread that holds it (no root needed)."""
import threading

from bocker import state


def test_nested_blocks_in_one_thread_do_not_wait_for_themselves(tmp_path):
    lock = tmp_path / "lock"
    done = threading.Event()

    def nested():
        with state.locked(lock):
            with state.locked(lock):
                with state.locked(str(lock)):
                    pass
        done.set()

    t = threading.Thread(target=nested, daemon=True)
    t.start()
    assert done.wait(5), "a nested state.locked() waited on its own lock"


def test_another_thread_still_waits_for_the_holder(tmp_path):
    lock = tmp_path / "lock"
    entered = threading.Event()
    with state.locked(lock):
        with state.locked(lock):
            t = threading.Thread(target=lambda: (state.locked(lock).__enter__(), entered.set()),
                                 daemon=True)
            t.start()
            assert not entered.wait(0.3)   # excluded while we hold it (inner block)
        assert not entered.wait(0.3)       # and after the inner block ends
    assert entered.wait(5)                 # gets it once the outer block ends


def _try_lock(path, shared=False, directory=False):
    """Whether another process gets the lock right now (LOCK_NB)."""
    import fcntl
    import os

    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_shared_holders_share_and_exclude_an_exclusive_one(tmp_path):
    lock = tmp_path / "lock"
    with state.locked(lock, shared=True) as held:
        assert held
        assert _try_lock(lock, shared=True)        # creates side by side
        assert not _try_lock(lock)                 # prune waits
    with state.locked(lock):
        assert not _try_lock(lock, shared=True)


def test_a_directory_lock_makes_nothing_and_says_when_it_is_gone(tmp_path):
    d = tmp_path / "ps_000000000001"
    d.mkdir()
    with state.locked(d, directory=True) as held:
        assert held and not _try_lock(d, directory=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ps_000000000001"]
    d.rmdir()
    with state.locked(d, directory=True) as held:
        assert held is False
    assert list(tmp_path.iterdir()) == []          # no lock file made in its place
