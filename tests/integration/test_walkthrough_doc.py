"""docs/walkthrough.md stays true: the trace it pastes and explains is the
trace a real `bocker run` prints today.

The walk-through quotes one `bocker --trace run --rm busybox true` (after a
`<!-- walkthrough-trace: ... -->` marker) and has one `###` section per
group of steps.  These tests run the same command and check that the doc
names exactly the steps bocker really takes, in the same order, and that
every step is explained under some heading.
"""
import json
import os
import re

from bocker.kernel import cgroups

DOC = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "docs", "walkthrough.md")
MARKER = "<!-- walkthrough-trace:"
# "[   1199]    1.979 ms  btrfs snapshot           source=... -> ..."
TRACE_LINE = re.compile(r"^\[\s*(\d+)\]\s+\d+\.\d+ ms  (.+)$")
# Steps only some hosts take: cgroup v2 births the child in its group.
V1_ONLY = {"join cgroup"}


def _read_doc():
    with open(DOC) as f:
        return f.read()


def parse_text_trace(text):
    """[(pid, step)] from text-trace lines; the step is the words before
    the first key=value argument or '->'."""
    out = []
    for line in text.splitlines():
        m = TRACE_LINE.match(line)
        if not m:
            continue
        words = []
        for word in m.group(2).split():
            if "=" in word or word == "->":
                break
            words.append(word)
        out.append((int(m.group(1)), " ".join(words)))
    return out


def doc_trace():
    """[(pid, step)] of the trace the walk-through pastes."""
    text = _read_doc()
    block = text[text.index(MARKER):].split("```text\n", 1)[1].split("```", 1)[0]
    return parse_text_trace(block)


def _real_run(bocker, fmt):
    proc = bocker(f"--trace={fmt}", "run", "--rm", "busybox", "true", check=True)
    return proc.stderr


def _json_steps(stderr):
    """[(pid, step)] of a --trace=json run, in printed order."""
    recs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [(r["pid"], r["step"]) for r in recs]


def _by_process(steps):
    """(parent's step names, child's step names), repeats collapsed."""
    parent_pid = steps[0][0]
    split = ([], [])
    for pid, step in steps:
        seq = split[pid != parent_pid]
        if not seq or seq[-1] != step:
            seq.append(step)
    return split


def test_doc_excerpt_is_a_whole_run():
    steps = doc_trace()
    names = [s for _, s in steps]
    assert len({pid for pid, _ in steps}) == 2, "the excerpt shows the parent and the child"
    assert names[0] == "btrfs snapshot" and names[-1] == "btrfs delete", names
    for step in ("clone", "pivot_root", "execve", "wait"):
        assert step in names, step


# The pools' takes (a warm server's, or any process's entries left in the
# root): a start always looks (the rootfs pool) or asks its server (the
# network pool), and what a take got replaces the steps that make it.
# The pasted trace is a start with nothing made ahead; the takes have a
# section of their own.
POOL_STEPS = {"pool take rootfs", "netpool take"}
REPLACED_BY = {"pool take rootfs": {"btrfs snapshot"},
               "netpool take": {"ipam lease", "netlink veth+addr+route", "loopback up"}}


def _taken(stderr):
    """The pool steps of a JSON trace that took something (a result)."""
    return {r["step"] for r in (json.loads(line) for line in stderr.splitlines()
                                if line.startswith("{"))
            if r["step"] in POOL_STEPS and r["result"]}


def test_doc_names_exactly_the_steps_of_a_real_run(bocker):
    stderr = _real_run(bocker, "json")
    real = _json_steps(stderr)
    doc = doc_trace()
    real_names, doc_names = {s for _, s in real}, {s for _, s in doc}
    absent_here = V1_ONLY if cgroups.driver().version == 2 else set()
    for step in _taken(stderr):
        absent_here = absent_here | REPLACED_BY[step]
    missing = doc_names - real_names - absent_here
    assert not missing, f"the walk-through shows steps bocker no longer takes: {sorted(missing)}"
    unexplained = real_names - doc_names - POOL_STEPS
    assert not unexplained, (f"bocker run now takes steps the walk-through's trace lacks: "
                             f"{sorted(unexplained)}; paste a new trace into docs/walkthrough.md")
    # same order, in the parent and in the child (steps both have)
    for doc_seq, real_seq in zip(_by_process(doc), _by_process(real)):
        common = set(doc_seq) & set(real_seq)
        assert [s for s in doc_seq if s in common] == [s for s in real_seq if s in common]


def test_every_step_has_a_section(bocker):
    headings = "\n".join(line for line in _read_doc().splitlines() if line.startswith("### "))
    real = {s for _, s in _json_steps(_real_run(bocker, "json"))}
    unexplained = sorted(s for s in real if s not in headings)
    assert not unexplained, f"no '###' section of docs/walkthrough.md names: {unexplained}"


def test_doc_parser_reads_the_real_text_trace(bocker):
    # The doc is read with the same parser as bocker's real text output, so
    # a change in the text format shows up here rather than as a silent
    # mismatch.
    text = parse_text_trace(_real_run(bocker, "text"))
    assert text and all(step for _, step in text)
    real = {s for _, s in _json_steps(_real_run(bocker, "json"))}
    assert {s for _, s in text} == real
