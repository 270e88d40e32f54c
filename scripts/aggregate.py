"""Mean and standard deviation over seeds of every method's metrics, as a Markdown table.

    python scripts/aggregate.py outputs/word_sort/multirun/<date_time>     # a sweep's dir
    python scripts/aggregate.py /tmp/seed1 /tmp/seed2 /tmp/seed3           # or run dirs

Reads every ``results.json`` at or below the given dirs (a partial sweep is fine: finished rows
count, missing ones are left out), prints the table and writes ``aggregate.md`` and
``aggregate.json`` into the first dir given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

METRICS = ("seen", "unseen", "total", "first_attempt", "si_frequency", "si_contribution", "wrong_to_right",
           "right_to_wrong", "train_examples")


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
    (args.dirs[0] / "aggregate.md").write_text(table)
    (args.dirs[0] / "aggregate.json").write_text(json.dumps(agg, indent=2))


if __name__ == "__main__":
    main()
