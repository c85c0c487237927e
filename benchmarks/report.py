"""The outputs: a text table, the JSON record and the PNG chart."""
import json
import os

from benchmarks.phases import PHASES
from benchmarks.targets import FLOOR

PHASE_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860",
                "#da8bc3", "#bbbbbb")


def ratios(stats):
    """Add x_crun and x_floor (median over the reference median) to stats."""
    crun = stats.get("crun", {}).get("median")
    floor = stats.get(FLOOR, {}).get("median")
    for entry in stats.values():
        entry["x_crun"] = entry["median"] / crun if crun else None
        entry["x_floor"] = entry["median"] / floor if floor else None


def _fmt(value, spec=".2f"):
    return "-" if value is None else format(value, spec)


def table(record):
    """The human summary, as a string."""
    lines = []
    m = record["machine"]
    lines.append(f"{m['hostname']}: {m['nproc']} CPU {m['cpu_model']}, kernel {m['kernel']}, "
                 f"cgroups {m['cgroup_mode']}; {record['method']['runs']} runs after "
                 f"{record['method']['warmup']} warm-up, interleaved")
    lines.append("")
    head = f"{'system':<22}{'n':>5}{'fail':>5}{'min':>9}{'median':>9}{'p90':>9}{'p99':>9}" \
           f"{'x crun':>8}{'x floor':>8}"
    lines.append(head + "   (ms; x floor = median / " + FLOOR + ")")
    lines.append("-" * len(head))
    rows = sorted(record["systems"].items(), key=lambda kv: kv[1]["stats"]["median"]
                  if kv[1].get("stats") else float("inf"))
    for name, entry in rows:
        s = entry.get("stats")
        if not s:
            lines.append(f"{name:<22}{0:>5}{entry['failures']:>5}   every timed start failed")
            continue
        lines.append(f"{name:<22}{s['n']:>5}{entry['failures']:>5}{s['min']:>9.2f}"
                     f"{s['median']:>9.2f}{s['p90']:>9.2f}{s['p99']:>9.2f}"
                     f"{_fmt(s['x_crun'], '.2f'):>8}{_fmt(s['x_floor'], '.2f'):>8}")
    notes = [(n, e["note"]) for n, e in record["systems"].items() if e.get("note")]
    if notes:
        lines.append("")
        lines.extend(f"  {n}: {note}" for n, note in notes)
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
                         for k, v in r.items() if k not in ("status", "note")}
                lines.append(f"  {name}: {shown}")
    lines.append("")
    lines.append("targets (issue 7, section 4; reported, never asserted):")
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
                   key=lambda n: record["systems"][n]["stats"]["median"])
    phased = {n: p for n, p in record["phases"].items() if "phases_median_ms" in p}
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 4 + 0.45 * max(len(names), 4)),
                                   gridspec_kw={"height_ratios": [max(len(names), 3), 3]})
    m = record["machine"]
    fig.suptitle(f"Start to exit of /bin/true: {m['hostname']}, {m['nproc']} CPU, "
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
            ax1.annotate(f"median {st['median']:.2f} ms", (st["p99"], i), xytext=(5, 0),
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
        ax1.set_xlabel("ms (log scale; box = p25-p75, whiskers = p1-p99, mark = median)")
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
        ax2.legend(fontsize=7, ncol=len(PHASES), loc="upper center",
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
