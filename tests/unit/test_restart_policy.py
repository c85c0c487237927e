"""Restart policies without a kernel: --restart's grammar and Docker's
messages, the backoff sequence, and the decision table (after an exit;
at boot)."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bocker.errors import InvalidArgument
from bocker.runtime import restartpolicy as rp
from bocker.runtime.spec import RunRequest


@pytest.mark.parametrize("text,expected", [
    ("no", ("no", 0)), ("", ("no", 0)), (None, ("no", 0)), ("always", ("always", 0)),
    ("unless-stopped", ("unless-stopped", 0)), ("on-failure", ("on-failure", 0)),
    ("on-failure:3", ("on-failure", 3)), ("on-failure:", ("on-failure", 0)),
    ("on-failure:+2", ("on-failure", 2)), ("on-failure:007", ("on-failure", 7)),
    ("always:0", ("always", 0)), ("no:0", ("no", 0)),
])
def test_parse(text, expected):
    assert rp.parse(text) == expected


@pytest.mark.parametrize("text,message", [
    (":1", "invalid restart policy format: no policy provided before colon"),
    ("on-failure:x", "invalid restart policy format: maximum retry count must be an integer"),
    ("always:2:3", "invalid restart policy format: maximum retry count must be an integer"),
    ("on-failure: 1", "invalid restart policy format: maximum retry count must be an integer"),
    ("on-failure:١", "invalid restart policy format: maximum retry count must be an integer"),
    ("on-failure:9223372036854775808",
     "invalid restart policy format: maximum retry count must be an integer"),
    ("on-failure:" + "0" * 5000 + "1x",
     "invalid restart policy format: maximum retry count must be an integer"),
    ("always:1", "invalid restart policy: maximum retry count can only be used with "
                 "'on-failure'"),
    ("no:-1", "invalid restart policy: maximum retry count can only be used with "
              "'on-failure' and cannot be negative"),
    ("on-failure:-1", "invalid restart policy: maximum retry count cannot be negative"),
    ("Always", "invalid restart policy: unknown policy 'Always'; use one of 'no', 'always', "
               "'on-failure', or 'unless-stopped'"),
    ("a\nb", "invalid restart policy: unknown policy 'a\\nb'; use one of 'no', 'always', "
             "'on-failure', or 'unless-stopped'"),
])
def test_parse_refuses_as_docker(text, message):
    with pytest.raises(InvalidArgument) as e:
        rp.parse(text)
    assert str(e.value) == message


@given(st.text(max_size=40))
def test_parse_accepts_only_the_grammar_and_fails_in_one_line(text):
    try:
        policy = rp.parse(text)
    except InvalidArgument as e:
        assert "\n" not in str(e) and str(e).startswith("invalid restart policy")
        return
    name, _, count = text.partition(":")
    assert policy.name == (name or "no") and policy.name in rp.NAMES
    assert policy.max_retries == (int(count) if count else 0) >= 0
    assert policy.max_retries == 0 or policy.name == "on-failure"


@given(st.integers(min_value=0, max_value=2 ** 63 - 1))
def test_on_failure_keeps_any_count(n):
    assert rp.parse(f"on-failure:{n}") == ("on-failure", n)


def test_with_rm_conflicts_unless_no():
    with pytest.raises(InvalidArgument) as e:
        rp.check("always", remove=True)
    assert str(e.value) == "Conflicting options: --restart and --rm"
    assert rp.check("no", remove=True) == rp.NO
    assert rp.check("", remove=True) == rp.NO


def test_the_request_checks_it_and_the_record_keeps_it():
    req = RunRequest("busybox", restart="on-failure:2")
    req.check()
    assert RunRequest.from_dict(req.to_dict()).restart == "on-failure:2"
    assert RunRequest.from_dict({"image": "x"}).restart == "no"  # a record from before
    with pytest.raises(InvalidArgument):
        RunRequest("busybox", restart="sometimes").check()
    with pytest.raises(InvalidArgument):
        RunRequest("busybox", restart="unless-stopped", remove=True).check()


def test_docker_view_and_a_record_it_cannot_read():
    assert rp.docker(rp.parse("on-failure:5")) == {"Name": "on-failure", "MaximumRetryCount": 5}
    assert rp.docker(rp.of_spec({})) == {"Name": "no", "MaximumRetryCount": 0}
    assert rp.of_spec({"restart": "from-the-future"}) == rp.NO


def test_backoff_doubles_from_100ms_to_a_minute():
    delays, delay = [], 0
    for _ in range(14):
        delay = rp.next_delay(delay, ran_seconds=0.5)
        delays.append(delay)
    assert delays == [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200,
                      60000, 60000, 60000, 60000]


def test_a_run_of_10s_starts_the_backoff_over():
    assert rp.next_delay(60000, ran_seconds=10) == 100
    assert rp.next_delay(60000, ran_seconds=9.99) == 60000
    assert rp.next_delay(800, ran_seconds=3600) == 100


@given(st.lists(st.floats(min_value=0, max_value=30), max_size=30))
def test_backoff_stays_within_moby_bounds(runs):
    delay = 0
    for ran in runs:
        new = rp.next_delay(delay, ran)
        assert rp.FIRST_DELAY_MS <= new <= rp.MAX_DELAY_MS
        assert new == 100 if ran >= 10 or delay == 0 else new == min(delay * 2, 60000)
        delay = new


# (policy, exit code, manually stopped, restart count) -> after an exit, at boot
TABLE = [
    ("no", 1, False, 0, False, False),
    ("no", 0, False, 0, False, False),
    ("always", 0, False, 0, True, True),
    ("always", 137, False, 5, True, True),
    ("always", 137, True, 0, False, True),          # stopped: not now, but at boot
    ("unless-stopped", 0, False, 0, True, True),
    ("unless-stopped", 1, False, 9, True, True),
    ("unless-stopped", 143, True, 0, False, False),  # stopped: neither
    ("on-failure", 1, False, 0, True, True),
    ("on-failure", 0, False, 0, False, False),
    ("on-failure", -1, False, 0, True, True),        # its end went unseen (a reboot)
    ("on-failure", 137, True, 0, False, True),       # moby#35166: a stop's code is not 0
    ("on-failure:2", 1, False, 1, True, True),
    ("on-failure:2", 1, False, 2, False, False),     # retries used up
    ("on-failure:2", 0, False, 0, False, False),
]


@pytest.mark.parametrize("policy,code,stopped,count,after_exit,at_boot", TABLE)
def test_decision_table(policy, code, stopped, count, after_exit, at_boot):
    p = rp.parse(policy)
    assert rp.after_exit(p, code, stopped, count) is after_exit
    assert rp.at_boot(p, code, stopped, count, started_before=True) is at_boot
    assert rp.at_boot(p, code, stopped, count, started_before=False) is False


@given(st.sampled_from(["no", "always", "unless-stopped", "on-failure", "on-failure:3"]),
       st.integers(-1, 255), st.integers(0, 10))
def test_a_users_stop_is_never_undone_after_an_exit(policy, code, count):
    assert rp.after_exit(rp.parse(policy), code, True, count) is False


def test_a_restarting_record_whose_restarter_is_gone_has_no_keeper():
    import os

    from bocker.runtime import records

    me = os.getpid()
    waiting = {"Status": "restarting", "Running": False, "RunnerPid": me,
               "RunnerStartTime": records.proc_start_time(me)}
    assert not records.keeper_gone(waiting)
    assert records.keeper_gone(dict(waiting, RunnerStartTime=-5))  # that process is gone
    assert not records.keeper_gone(dict(waiting, Status="exited", RunnerStartTime=-5))
