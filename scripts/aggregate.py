"""Mean and standard deviation over seeds of every method's metrics, as a Markdown table.

    python scripts/aggregate.py outputs/word_sort/multirun/<date_time>     # a sweep's dir
    python scripts/aggregate.py /tmp/seed1 /tmp/seed2 /tmp/seed3           # or run dirs

Reads every ``results.json`` at or below the given dirs (a partial sweep is fine: finished rows
count, missing ones are left out), prints the table and writes into the first dir given:
``aggregate.md``, ``aggregate.json``, and two plots over the iterations of each iterated
method (rows ``<name>_t<k>``; t0 is ft_rationale), with the other methods as flat lines:
``accuracy.png`` (seen, unseen, total) and ``self_improvement.png`` (first attempt, SI
frequency, SI contribution, wrong-to-right). A method's row from the same seed in several
runs (e.g. ft_rationale in every experiment of a sweep) counts once.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

METRICS = ("seen", "unseen", "total", "first_attempt", "si_frequency", "si_contribution", "wrong_to_right",
           "right_to_wrong", "detect_precision", "detect_recall", "fix_rate", "train_examples")


def find_results(dirs: list[Path]) -> list[dict]:
    found = []
    for d in dirs:
        for path in sorted({*d.glob("results.json"), *d.glob("**/results.json")}):
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as e:
                print(f"skipping {path}: {e}", file=sys.stderr)
    return found


def aggregate(results: list[dict]) -> dict[str, dict]:
    """{method: {"seeds": [...], metric: {"mean", "std", "values"}}}, methods in first-seen order."""
    out: dict[str, dict] = {}
    for res in results:
        for row in res["rows"]:
            entry = out.setdefault(row["method"], {"seeds": []})
            if res["seed"] in entry["seeds"]:
                continue  # the same row of the same seed from another run of the sweep
            entry["seeds"].append(res["seed"])
            for m in METRICS:
                if isinstance(row.get(m), (int, float)):
                    entry.setdefault(m, {"values": []})["values"].append(row[m])
    for entry in out.values():
        for m in METRICS:
            if m in entry:
                v = entry[m]["values"]
                entry[m]["mean"] = statistics.fmean(v)
                entry[m]["std"] = statistics.stdev(v) if len(v) > 1 else 0.0
    return out


def markdown(agg: dict[str, dict], task: str) -> str:
    metrics = [m for m in METRICS if any(m in e for e in agg.values())]
    lines = [f"# {task}: mean ± std over seeds (percent)", "",
             "| method | seeds | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for method, e in agg.items():
        cells = [f"{e[m]['mean']:.1f} ± {e[m]['std']:.1f}" if m in e else "-" for m in metrics]
        lines.append(f"| {method} | {len(e['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


ITERATED = re.compile(r"^(.*)_t(\d+)$")
ACCURACY = ("seen", "unseen", "total")
SELF_IMPROVEMENT = ("first_attempt", "si_frequency", "si_contribution", "wrong_to_right")


def plot(agg: dict[str, dict], metrics: tuple[str, ...], path: Path, title: str) -> None:
    """One panel per metric: mean ± std per iteration for each iterated method, flat lines for the rest."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series: dict[str, list[tuple[int, str]]] = {}
    for method in agg:
        m = ITERATED.match(method)
        if m:
            series.setdefault(m.group(1), []).append((int(m.group(2)), method))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, points in sorted(series.items()):
            points = sorted(points)
            if "ft_rationale" in agg:
                points = [(0, "ft_rationale")] + points
            xs = [k for k, meth in points if metric in agg[meth]]
            ys = [agg[meth][metric]["mean"] for k, meth in points if metric in agg[meth]]
            es = [agg[meth][metric]["std"] for k, meth in points if metric in agg[meth]]
            ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=name)
        for method, e in agg.items():
            if not ITERATED.match(method) and metric in e:
                ax.axhline(e[metric]["mean"], linestyle="--", linewidth=1, label=method, color=f"C{len(series) + list(agg).index(method)}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.set_xlabel("iteration")
        ax.set_ylabel("percent")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    results = find_results(args.dirs)
    if not results:
        sys.exit(f"error: no results.json at or below {', '.join(map(str, args.dirs))}")
    agg = aggregate(results)
    table = markdown(agg, results[0]["task"])
    print(table)
    out = args.dirs[0]
    (out / "aggregate.md").write_text(table)
    (out / "aggregate.json").write_text(json.dumps(agg, indent=2))
    task, seeds = results[0]["task"], sorted({r["seed"] for r in results})
    plot(agg, ACCURACY, out / "accuracy.png", f"{task}: accuracy (seeds {seeds})")
    plot(agg, SELF_IMPROVEMENT, out / "self_improvement.png", f"{task}: self-improvement (seeds {seeds})")
    print(f"wrote {out / 'aggregate.md'}, aggregate.json, accuracy.png, self_improvement.png")


if __name__ == "__main__":
    main()
