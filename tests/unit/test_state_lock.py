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
