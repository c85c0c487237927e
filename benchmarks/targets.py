"""The targets of issue 16 item 4, reported as met / not met / unknown,
each with the measured ratio, all within one run.

They are reported, never asserted: a missed target is a finding to profile
and fix or document, not a failing test, and never fails the run.  The
latency targets judge the sustained figure (the median of a row's block
medians, benchmarks/blocks.py); the detail shows the best block too.
"""

FLOOR = "floor-ns-net"     # the kernel floor with a network namespace
CLI = "bocker-cli-bridge"  # `bocker run --rm busybox true` as a user types it
MIB_KIB = 1024
FLAT = 1.10                # "latency flat": within 10%


def _block(stats, name):
    entry = stats.get(name)
    return entry["median_block"] if entry else None


def _best(stats, name):
    entry = stats.get(name)
    return entry["best_block"] if entry else None


def _verdict(ok):
    return "met" if ok else "not met"


def evaluate(stats, scale):
    """A list of {"target", "status", "ratio", "detail"}; stats: {name:
    blocks.summarize() of the row}, scale: scale.run_all()'s record."""
    out = []
    scale = scale or {}

    def add(target, status, detail, ratio=None):
        out.append({"target": target, "status": status, "ratio": ratio, "detail": detail})

    cli, crun = _block(stats, CLI), _block(stats, "crun")
    target = "CLI start (bridge) sustained <= 1.0x crun run (no network)"
    if cli is None or crun is None:
        add(target, "unknown", f"needs {CLI} and crun")
    else:
        r = cli / crun
        add(target, _verdict(r <= 1.0), f"median block {cli:.2f} ms / crun {crun:.2f} ms = "
            f"{r:.2f}x (best blocks {_best(stats, CLI):.2f} / {_best(stats, 'crun'):.2f})", r)

    p8952 = _block(stats, "p8952")
    target = "CLI start (bridge) >= 5x faster than p8952/bocker run"
    if cli is None or p8952 is None:
        add(target, "unknown", f"needs {CLI} and p8952 (/tmp/p8952/bocker or --p8952 PATH)")
    else:
        r = p8952 / cli
        add(target, _verdict(r >= 5.0), f"p8952 {p8952:.2f} ms / {cli:.2f} ms = {r:.1f}x", r)

    api, floor = _block(stats, "bocker-api-bridge"), _block(stats, FLOOR)
    target = f"API start (bridge) <= 3x the kernel floor with netns ({FLOOR})"
    if api is None or floor is None:
        add(target, "unknown", f"needs bocker-api-bridge and {FLOOR}")
    else:
        r = api / floor
        add(target, _verdict(r <= 3.0), f"median block {api:.2f} ms / {floor:.2f} ms = "
            f"{r:.2f}x", r)

    conc, ref = scale.get("concurrent_cli", {}), scale.get("concurrent_crun", {})
    target = "200 concurrent CLI starts, 20 at a time, zero failures (throughput vs crun's)"
    if conc.get("status") != "ok":
        add(target, "unknown", conc.get("note", "scale benchmarks not run"))
    else:
        detail = (f"{conc['n']} by {conc['width']}: {conc['failures']} failed, "
                  f"{conc['per_second']:.1f} containers/s")
        r = None
        if ref.get("status") == "ok" and ref.get("per_second"):
            r = conc["per_second"] / ref["per_second"]
            detail += (f"; crun {ref['per_second']:.1f}/s ({ref['failures']} failed): "
                       f"{r:.2f}x crun's throughput")
        else:
            detail += f"; crun: {ref.get('note', 'not run')}"
        add(target, _verdict(conc["failures"] == 0), detail, r)

    lat = scale.get("latency_with_detached", {})
    target = "start latency flat (within 10%) with 100 detached containers running"
    if lat.get("status") != "ok" or not lat.get("median_block_ms_with_0") \
            or lat.get("median_block_ms_with_n") is None:
        add(target, "unknown", lat.get("note", "scale benchmarks not run"))
    else:
        idle, busy = lat["median_block_ms_with_0"], lat["median_block_ms_with_n"]
        r = busy / idle
        add(target, _verdict(r <= FLAT), f"median block {busy:.2f} ms with {lat['detached']} / "
            f"{idle:.2f} ms with 0 = {r:.3f}", r)

    pss = scale.get("monitor_pss", {})
    target = "detached container's monitor PSS < 1 MiB"
    if pss.get("status") != "ok" or pss.get("pss_kib") is None:
        add(target, "unknown", pss.get("note", "scale benchmarks not run"))
    else:
        r = pss["pss_kib"] / MIB_KIB
        add(target, _verdict(r < 1.0), f"PSS {pss['pss_kib']} KiB = {r:.2f} MiB", r)
    return out
