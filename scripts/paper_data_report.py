"""How tripost reads the paper's own data: every file of the reference's ``data/`` folder (and
BIG-Bench Hard's task files), loaded as a run loads them, with the checks of SPEC 9.

For each file: items loaded of the file, skipped (and why), gold answers the task's solver
contradicts; for the rationales it holds: how many are byte-identical to our gold rationale
(arithmetic and word sort, whose rationales are scripted), consistent (SPEC 6) and judged
correct by the scripted checker. Prints a Markdown table.

    python scripts/paper_data_report.py --data <reference repo>/data --bbh <BIG-Bench-Hard>/bbh
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tripost.data import DataFileError, load_file
from tripost.tasks import get_task

# file-name prefixes of the reference (and BIG-Bench Hard) -> our task names
TASKS = {"multistep_arithmetic": "multistep_arithmetic", "word_sorting": "word_sort",
         "date_understanding": "date_understanding", "logical_deduction": "logical_deduction"}
SCRIPTED = ("multistep_arithmetic", "word_sort")  # whose reference rationales are scripted (byte-identical)


def task_of(path: Path):
    for prefix, name in TASKS.items():
        if path.name.startswith(prefix):
            return get_task(name)
    return None


def row(task, path: Path) -> list:
    try:
        loaded = load_file(task, path, split=None)
    except DataFileError as e:
        return [path.name, task.name, "-", f"error: {e}", "", "", "", "", ""]
    report, with_rationale = loaded.report, [e for e in loaded.examples if e.rationale]
    n = len(with_rationale)
    same = sum(task.gold_rationale(e.question) == e.rationale for e in with_rationale) if task.name in SCRIPTED else None
    consistent = sum(task.is_consistent(e.rationale, e.answer, e.question) for e in with_rationale)
    judged = sum(task.check(e.question, e.rationale).is_correct for e in with_rationale)
    frac = lambda k: "-" if k is None or not n else f"{k}/{n} ({100 * k / n:.1f}%)"  # noqa: E731
    skipped = "; ".join(f"{r} x{c}" for r, c in report.skipped.items()) or "0"
    return [path.name, task.name, report.layout, f"{report.loaded}/{report.items}", skipped, report.disagreements,
            frac(same), frac(consistent), frac(judged)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="the reference repository's data/ folder")
    parser.add_argument("--bbh", type=Path, help="BIG-Bench Hard's bbh/ folder (the four tasks' files)")
    args = parser.parse_args(argv)
    files = sorted(args.data.rglob("*.jsonl")) if args.data else []
    files += sorted(p for p in args.bbh.glob("*.json") if task_of(p)) if args.bbh else []
    header = ["file", "task", "layout", "loaded", "skipped", "solver disagrees", "byte-identical rationales",
              "consistent", "checker: correct"]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for path in files:
        task = task_of(path)
        if task is not None:
            print("| " + " | ".join(str(v) for v in row(task, path)) + " |", flush=True)


if __name__ == "__main__":
    main()
