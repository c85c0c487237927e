"""Restart policies, as Docker has them: `--restart` parsed and checked,
the backoff between restarts, and the two decisions (after an exit; at a
boot).  Pure functions: the process that waits and restarts is
restarter.py's.

    no               never restarted (the default)
    always           after every exit, whatever its code
    unless-stopped   the same, unless the user stopped it
    on-failure[:N]   after a non-zero exit, at most N times (0: no limit)

A user's `bocker stop` or `kill` is never undone: after it, no policy
restarts the container (moby cancels its restart manager and sets
HasBeenManuallyStopped); only a boot, for `always`, or a start by the user
does.
"""
import re
from collections import namedtuple

from bocker.errors import InvalidArgument

NAMES = ("no", "always", "on-failure", "unless-stopped")

# moby's restartmanager: the first restart waits 100 ms, each consecutive
# one twice as long, at most a minute; a run of 10 s or more starts over.
FIRST_DELAY_MS = 100
MAX_DELAY_MS = 60_000
RESET_AFTER_S = 10

_GO_INT64 = 2 ** 63 - 1


class Policy(namedtuple("Policy", "name max_retries")):
    """A parsed --restart value: name (one of NAMES) and, for on-failure,
    the maximum retry count (0: unlimited)."""


NO = Policy("no", 0)


def parse(text):
    """A --restart value -> Policy, with Docker's checks and messages (the
    CLI's parse, then the daemon's validation); InvalidArgument if bad.
    An empty value is Docker's unset policy: no."""
    if text is None or text == "":
        return NO
    name, colon, count = str(text).partition(":")
    if colon and not name:
        raise InvalidArgument("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        # Go's strconv.Atoi: an optional sign and ASCII digits, int64 range
        match = re.fullmatch(r"([+-]?)0*([0-9]+)", count)
        # (leading zeros dropped first: int() refuses over 4300 digits)
        retries = int(match[1] + match[2]) if match and len(match[2]) <= 19 else None
        if retries is None or not -_GO_INT64 - 1 <= retries <= _GO_INT64:
            raise InvalidArgument(
                "invalid restart policy format: maximum retry count must be an integer")
    if name not in NAMES:
        shown = name if name.isprintable() else ascii(name)[1:-1]  # one line, whatever it holds
        raise InvalidArgument(f"invalid restart policy: unknown policy '{shown}'; use one of "
                              "'no', 'always', 'on-failure', or 'unless-stopped'")
    if name != "on-failure" and retries:
        raise InvalidArgument("invalid restart policy: maximum retry count can only be used "
                              "with 'on-failure'" + (" and cannot be negative" if retries < 0
                                                     else ""))
    if retries < 0:
        raise InvalidArgument("invalid restart policy: maximum retry count cannot be negative")
    return Policy(name, retries)


def check(text, remove):
    """Refuse a policy Docker refuses, --rm with one included."""
    policy = parse(text)
    if remove and policy.name != "no":
        raise InvalidArgument("Conflicting options: --restart and --rm")
    return policy


def of_spec(spec):
    """The policy a record's stored request names; no for a record from
    before --restart (or one this bocker cannot read)."""
    try:
        return parse(spec.get("restart"))
    except InvalidArgument:
        return NO


def docker(policy):
    """Docker's HostConfig.RestartPolicy."""
    return {"Name": policy.name, "MaximumRetryCount": policy.max_retries}


def next_delay(previous_ms, ran_seconds):
    """The wait before the next restart, in milliseconds: 100 ms first,
    then twice the previous wait, at most a minute; a container that ran
    10 s or more starts over at 100 ms."""
    if ran_seconds >= RESET_AFTER_S or previous_ms <= 0:
        return FIRST_DELAY_MS
    return min(previous_ms * 2, MAX_DELAY_MS)


def should_restart(policy, exit_code, manually_stopped, restart_count):
    """moby's ShouldRestart: the policy's own vote."""
    if policy.name == "always":
        return True
    if policy.name == "unless-stopped":
        return not manually_stopped
    if policy.name == "on-failure":
        under_limit = policy.max_retries == 0 or restart_count < policy.max_retries
        return under_limit and exit_code != 0
    return False


def after_exit(policy, exit_code, manually_stopped, restart_count):
    """Restart a container that has just exited?  Never after the user
    stopped or killed it (moby cancels the restart manager), else as the
    policy says."""
    return not manually_stopped and should_restart(policy, exit_code, manually_stopped,
                                                   restart_count)


def at_boot(policy, exit_code, manually_stopped, restart_count, started_before):
    """Start a container at boot (Docker's daemon start)?  One that was
    ever started, if the policy says so: always, even after a user's stop;
    unless-stopped unless the user stopped it; on-failure if its last exit
    was not 0 (a container the reboot ended has no known code, which is
    not 0) and its retries are not used up.  moby does the same (see
    moby#35166, moby#47846 for on-failure's)."""
    return started_before and should_restart(policy, exit_code, manually_stopped, restart_count)
