"""The outputs: a text table, the JSON record and the PNG chart."""
import json
import os

from benchmarks import measure
from benchmarks.phases import PHASES
from benchmarks.targets import FLOOR

PHASE_COLORS = ("#2a2a2a", "#7f7f7f", "#4c72b0", "#dd8452", "#55a868", "#c44e52",
                "#8172b3", "#937860", "#da8bc3", "#bbbbbb")
INTERLEAVED_HIDES = (
    "interleaved rounds start each system once per round, so the work the kernel defers "
    "after one system's start (btrfs cleaning of its deleted snapshot, its network "
    "namespace's teardown, its cgroup removal) is charged to whichever system runs next: "
    "a system that defers much looks faster than it is and its neighbours slower")


def ratios(stats, key="median_block"):
    """Add x_crun and x_floor (stats[key] over the reference's) to stats."""
    crun = stats.get("crun", {}).get(key)
    floor = stats.get(FLOOR, {}).get(key)
    for entry in stats.values():
        entry["x_crun"] = entry[key] / crun if crun else None
        entry["x_floor"] = entry[key] / floor if floor else None


def interleaved_record(results, runs, seconds):
    """The secondary view for the JSON: per-system stats of interleaved rounds."""
    stats = {}
    out = {"runs": runs, "seconds": seconds, "hides": INTERLEAVED_HIDES, "systems": {}}
    for name, r in results.items():
        summary = measure.summarize(r["samples_ns"])
        if summary:
            stats[name] = summary
        out["systems"][name] = {"stats": summary, "failures": r["failures"]}
    ratios(stats, "median")
    return out


def _fmt(value, spec=".2f"):
    return "-" if value is None else format(value, spec)


def _sustained_lines(record):
    head = f"{'system':<26}{'blk':>4}{'n':>5}{'fail':>5}{'best blk':>9}{'med blk':>9}" \
           f"{'p50':>8}{'p90':>8}{'p99':>8}{'x crun':>8}{'x floor':>8}"
    lines = [head + "   (ms; x = median block / that row's)", "-" * len(head)]
    rows = sorted(record["systems"].items(), key=lambda kv: kv[1]["stats"]["median_block"]
                  if kv[1].get("stats") else float("inf"))
    for name, entry in rows:
        s = entry.get("stats")
        if not s:
            lines.append(f"{name:<26}{0:>4}{0:>5}{entry['failures']:>5}   every timed start failed")
            continue
        lines.append(f"{name:<26}{s['blocks']:>4}{s['n']:>5}{entry['failures']:>5}"
                     f"{s['best_block']:>9.2f}{s['median_block']:>9.2f}{s['p50']:>8.2f}"
                     f"{s['p90']:>8.2f}{s['p99']:>8.2f}"
                     f"{_fmt(s['x_crun']):>8}{_fmt(s['x_floor']):>8}")
    return lines


def _interleaved_lines(inter):
    head = f"{'system':<26}{'n':>5}{'fail':>5}{'min':>9}{'median':>9}{'p90':>9}{'p99':>9}" \
           f"{'x crun':>8}{'x floor':>8}"
    lines = [f"interleaved, secondary ({inter['runs']} rounds, one start of each system per "
             f"round, the order rotated): what it hides: {inter['hides']}", "",
             head, "-" * len(head)]
    rows = sorted(inter["systems"].items(), key=lambda kv: kv[1]["stats"]["median"]
                  if kv[1].get("stats") else float("inf"))
    for name, entry in rows:
        s = entry.get("stats")
        if not s:
            lines.append(f"{name:<26}{0:>5}{entry['failures']:>5}   every timed start failed")
            continue
        lines.append(f"{name:<26}{s['n']:>5}{entry['failures']:>5}{s['min']:>9.2f}"
                     f"{s['median']:>9.2f}{s['p90']:>9.2f}{s['p99']:>9.2f}"
                     f"{_fmt(s['x_crun']):>8}{_fmt(s['x_floor']):>8}")
    return lines


def table(record):
    """The human summary, as a string."""
    lines = []
    m, meth = record["machine"], record["method"]
    lines.append(f"{m['hostname']}: {m['nproc']} CPU {m['cpu_model']}, kernel {m['kernel']}, "
                 f"cgroups {m['cgroup_mode']}; sustained blocks: {meth['rounds']} rounds x "
                 f"{meth['starts_per_block']} back-to-back starts per system, "
                 f"{meth['settle_s']} s settle, {meth['warmup']} warm-up starts")
    lines.append("")
    lines.extend(_sustained_lines(record))
    notes = [(n, e["note"]) for n, e in record["systems"].items() if e.get("note")]
    if notes:
        lines.append("")
        lines.extend(f"  {n}: {note}" for n, note in notes)
    if record.get("interleaved"):
        lines.append("")
        lines.extend(_interleaved_lines(record["interleaved"]))
    if record["skipped"]:
        lines.append("")
        lines.append("skipped:")
        lines.extend(f"  {s['name']}: {s['note']}" for s in record["skipped"])
    if record["phases"]:
        lines.append("")
        lines.append("phases (median ms of traced starts):")
        for name, p in record["phases"].items():
            if "phases_median_ms" not in p:
                lines.append(f"  {name}: {p.get('note')}")
                continue
            parts = ", ".join(f"{k} {v:.2f}" for k, v in p["phases_median_ms"].items() if v)
            lines.append(f"  {name} ({p['runs']} runs, total {p['total_median_ms']:.2f}): {parts}")
            # The longest steps by their own duration: a step that runs
            # beside a longer one is credited little in its phase.
            steps = sorted(((v["median"], k) for k, v in p.get("steps_median_ms", {}).items()
                            if v.get("median") is not None), reverse=True)[:6]
            if steps:
                lines.append("      longest steps: " + ", ".join(f"{k} {v:.2f}" for v, k in steps))
    if record["scale"]:
        lines.append("")
        lines.append("scale:")
        for name, r in record["scale"].items():
            if r.get("status") != "ok":
                lines.append(f"  {name}: {r.get('status')}: {r.get('note')}")
            else:
                shown = {k: (round(v, 2) if isinstance(v, float) else v)
                         for k, v in r.items() if k not in ("status", "note")
                         and not isinstance(v, (list, dict))}
                lines.append(f"  {name}: {shown}")
    lines.append("")
    lines.append("targets (issue 16, item 4; reported, never asserted):")
    for t in record["targets"]:
        lines.append(f"  [{t['status']:^9}] {t['target']}: {t['detail']}")
    return "\n".join(lines)


def write_json(record, path):
    """Write atomically: a reader never sees half a file."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def write_png(record, samples_ms, path):
    """Latency distribution per system (log scale) and the phase breakdown
    of bocker's starts as stacked bars.  Returns None, or why no chart."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no chart (pip install matplotlib)"
    names = sorted((n for n in samples_ms if samples_ms[n]),
                   key=lambda n: record["systems"][n]["stats"]["median_block"])
    phased = {n: p for n, p in record["phases"].items() if "phases_median_ms" in p}
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 4 + 0.45 * max(len(names), 4)),
                                   gridspec_kw={"height_ratios": [max(len(names), 3), 3]})
    m = record["machine"]
    fig.suptitle(f"Start to exit of /bin/true, sustained blocks: {m['hostname']}, {m['nproc']} CPU, "
                 f"kernel {m['kernel']}, {m['started_utc']}", fontsize=10)
    if names:
        data = [samples_ms[n] for n in names]
        try:   # matplotlib >= 3.10 spells it orientation=, older ones vert=
            ax1.boxplot(data, orientation="horizontal", whis=(1, 99), showfliers=False)
        except TypeError:
            ax1.boxplot(data, vert=False, whis=(1, 99), showfliers=False)
        ax1.set_yticks(range(1, len(names) + 1))
        ax1.set_yticklabels(names)
        for i, n in enumerate(names, start=1):
            st = record["systems"][n]["stats"]
            ax1.annotate(f"median block {st['median_block']:.2f} ms", (st["p99"], i), xytext=(5, 0),
                         textcoords="offset points", va="center", fontsize=7)
        ax1.set_xscale("log")
        # Room on the right for the median labels.
        ax1.set_xlim(right=3 * max(record["systems"][n]["stats"]["p99"] for n in names))
        from matplotlib.ticker import FuncFormatter
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax1.xaxis.set_major_formatter(plain)
        ax1.xaxis.set_minor_formatter(FuncFormatter(
            lambda v, _: f"{v:g}" if f"{v:g}"[0] in "25" else ""))
        ax1.tick_params(axis="x", which="minor", labelsize=7)
        ax1.set_xlabel("ms, every start of every block (log scale; box = p25-p75, "
                       "whiskers = p1-p99, mark = median)")
    else:
        ax1.text(0.5, 0.5, "no system ran", ha="center", va="center")
    ax1.grid(axis="x", which="both", alpha=0.3)
    if phased:
        labels = list(phased)
        left = [0.0] * len(labels)
        for phase, color in zip(PHASES, PHASE_COLORS):
            widths = [phased[n]["phases_median_ms"][phase] for n in labels]
            ax2.barh(labels, widths, left=left, color=color, label=phase)
            left = [a + b for a, b in zip(left, widths)]
        for i, total in enumerate(left):
            ax2.annotate(f"{total:.1f} ms", (total, i), xytext=(4, 0),
                         textcoords="offset points", va="center", fontsize=7)
        ax2.set_xlim(right=max(left) * 1.1)
        ax2.legend(fontsize=7, ncol=(len(PHASES) + 1) // 2, loc="upper center",
                   bbox_to_anchor=(0.5, -0.28), frameon=False)
        ax2.set_xlabel("ms (median of each phase over traced starts)")
        ax2.set_title("bocker start, per phase (BOCKER_TRACE=json)", fontsize=9)
    else:
        ax2.text(0.5, 0.5, "no phase breakdown: bocker run with BOCKER_TRACE=json "
                 "did not run here", ha="center", va="center", fontsize=9)
        ax2.set_axis_off()
    fig.tight_layout()
    tmp = f"{path}.tmp"
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return None
