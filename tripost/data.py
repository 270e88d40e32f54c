"""Where questions come from: the task's generator, or data files in any layout of SPEC 9.

Layouts (``task.<train|test>.format``; ``auto`` tells them apart per file):
- ``bigbench``: BIG-Bench (Hard) JSON, ``{"examples": [{"input": ..., "target": ...}]}``
  (``target`` a string, or a list whose first item is the answer).
- ``jsonl``: the paper's raw pools and our own data files: ``question``, ``rationale`` and
  ``correct_answer`` (any JSON type: a list for word sort), or, for options tasks, ``question``
  without options, ``formatted_choices`` and ``correct_choice`` (a bare letter), or (task=custom's
  own items) ``answer``; ``meta_data`` with ``new_split`` (rows of another split are left out) and our ``cell``.
- ``rationale``: the paper's training and validation files: ``text``, ``text_att_start_text``
  and ``meta_data`` holding ``question``, ``answer``, ``rationale`` (and ``formatted_choices``).
- ``text``: the paper's answer-only and LMSI files, only ``text`` and ``text_att_start_text``:
  ready-made training texts, the loss starting after the marker; their questions (the text
  before the marker) are answered by the task's solver.

Never silent, never all-or-nothing: an item that cannot be read or placed in a cell is skipped
and counted (``LoadReport``: "loaded 246 of 250; skipped 4: ..."), ``strict`` makes any skip an
error, a gold answer the task's own solver contradicts is kept and reported, and a file with no
usable item is an error naming the file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tripost.tasks import Example, Task
from tripost.training.data import TrainExample

LAYOUTS = ("auto", "bigbench", "jsonl", "rationale", "text")
SHOWN = 3  # skipped items and disagreements shown by example in a report


class DataFileError(ValueError):
    """A data file that yields nothing usable (or any skip under ``strict``); one line naming it."""


@dataclass
class LoadReport:
    """What loading one file did: counts for results.json and one line for the log."""

    path: str
    layout: str
    split: str | None = None
    items: int = 0  # items of the file (of the chosen split)
    loaded: int = 0
    other_split: int = 0  # rows of another new_split, left out on purpose
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    skip_examples: list[str] = field(default_factory=list)  # "line 7: reason", the first few
    disagreements: int = 0  # gold answers the task's solver contradicts (kept, reported)
    disagreement_examples: list[dict[str, str]] = field(default_factory=list)
    answers_from_solver: int = 0  # text layout: the file has no answers

    def skip(self, where: str, reason: str) -> None:
        self.skipped[re.split(r" \(|: ", reason)[0][:80]] += 1  # the kind of reason, without its details
        if len(self.skip_examples) < SHOWN:
            self.skip_examples.append(f"{where}: {reason}")

    def summary(self) -> str:
        line = f"{self.path}: loaded {self.loaded} of {self.items} ({self.layout}"
        line += f", split {self.split}; {self.other_split} rows of other splits left out)" if self.split else ")"
        if self.skipped:
            line += f"; skipped {sum(self.skipped.values())}: " + "; ".join(self.skip_examples)
        if self.disagreements:
            shown = ", ".join(f"{d['where']} file {d['file']} vs solver {d['solver']}" for d in self.disagreement_examples)
            line += f"; the task's solver disagrees with {self.disagreements} gold answers (kept): {shown}"
        if self.answers_from_solver:
            line += f"; {self.answers_from_solver} answers from the task's solver (the file has none)"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "layout": self.layout, "split": self.split, "items": self.items,
                "loaded": self.loaded, "other_split": self.other_split, "skipped": dict(self.skipped),
                "skip_examples": self.skip_examples, "solver_disagreements": self.disagreements,
                "disagreement_examples": self.disagreement_examples,
                "answers_from_solver": self.answers_from_solver}


@dataclass
class Loaded:
    examples: list[Example]
    texts: list[TrainExample]  # ready-made training texts (text layout), else empty
    report: LoadReport


# ---------------------------------------------------------------------------- reading items
def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise DataFileError(f"{path}:{line}: not UTF-8 (byte {e.start})") from None


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, row or the reason it is unreadable) for every non-empty line."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"line {lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield where, ValueError(f"not UTF-8 (byte {e.start} of the line)")
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield where, ValueError(f"not valid JSON ({e.msg})")
                continue
            yield where, row if isinstance(row, dict) else ValueError(f"expected a JSON object, got {type(row).__name__}")


def _bigbench_items(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as e:
        raise DataFileError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise DataFileError(f'{path}: expected an object with an "examples" list')
    for i, ex in enumerate(data["examples"]):
        yield f"examples[{i}]", ex if isinstance(ex, dict) else ValueError("not a JSON object")


def _blank(path: Path) -> bool:
    """Whether the file holds nothing but whitespace (read in chunks: files may be large)."""
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            if chunk.strip():
                return False
    return True


def detect_layout(path: Path) -> str:
    """The layout of a file: BIG-Bench JSON, or a JSONL layout told by its first readable row."""
    if path.suffix == ".json":
        return "bigbench"
    for _, row in _jsonl_rows(path):
        if isinstance(row, ValueError):  # a JSON document over several lines: BIG-Bench's
            return "bigbench"
        if isinstance(row, dict):
            if "question" in row:  # (the date raw pool's rows also carry a few-shot "examples" text)
                return "jsonl"
            if "text" in row:
                meta = row.get("meta_data")
                return "rationale" if isinstance(meta, dict) and "question" in meta else "text"
            if "examples" in row:  # BIG-Bench's on one line
                return "bigbench"
            break
    raise DataFileError(f"{path}: cannot tell the layout (name it: task.train.format / task.test.format, one of {LAYOUTS[1:]})")


# ---------------------------------------------------------------------------- one item
def _required(obj: dict, keys: tuple[str, ...], owner: str = "") -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ValueError(f"missing key(s) {missing}{owner}")


def _with_choices(question: Any, choices: Any) -> Any:
    """Options tasks keep the options apart in the paper's files; the prompt has them inline."""
    if choices is None or not isinstance(question, str):
        return question
    if not isinstance(choices, str):
        raise ValueError("formatted_choices is not text")
    return f"{question.rstrip()}\nOptions:\n{choices.strip()}"


def _fields(layout: str, item: dict) -> dict[str, Any]:
    """question, answer (raw JSON value or None), rationale, cell and split of one item."""
    meta = item.get("meta_data") if isinstance(item.get("meta_data"), dict) else {}
    if layout == "bigbench":
        _required(item, ("input", "target"))
        target = item["target"]
        if isinstance(target, list):
            target = target[0] if target else ""
        if not target and isinstance(item.get("target_scores"), dict):
            target = max(item["target_scores"], key=item["target_scores"].get)
        return {"question": item["input"], "answer": target}
    if layout == "jsonl":
        _required(item, ("question",))
        key = next((k for k in ("correct_answer", "correct_choice", "answer") if k in item), None)
        if key is None:
            raise ValueError("missing key(s) ['correct_answer'] (or 'correct_choice', 'answer')")
        answer = item[key]
        return {"question": _with_choices(item["question"], item.get("formatted_choices")), "answer": answer,
                "rationale": item.get("rationale"), "cell": meta.get("cell"), "split": meta.get("new_split")}
    if layout == "rationale":
        _required(item, ("text", "meta_data"))
        _required(meta, ("question", "answer"), " in meta_data")
        return {"question": _with_choices(meta["question"], meta.get("formatted_choices")), "answer": meta["answer"],
                "rationale": meta.get("rationale"), "split": meta.get("new_split")}
    _required(item, ("text", "text_att_start_text"))
    text, marker = item["text"], item["text_att_start_text"]
    if not isinstance(text, str) or not isinstance(marker, str) or marker not in text:
        raise ValueError("text_att_start_text does not occur in text")
    at = text.index(marker)
    return {"question": text[:at], "text": TrainExample(text, at + len(marker))}  # no answer: the solver's


def question_text(task: Task, text: str) -> str:
    """The question as the task sees it: without "Q:", in the task's normal form."""
    text = text.strip()
    if text.startswith("Q:"):
        text = text[2:].strip()
    normalize = getattr(task, "normalize_question", None)
    return normalize(text) if normalize else text


def _example(task: Task, fields: dict[str, Any], max_chars: int, report: LoadReport, where: str) -> Example:
    question = fields["question"]
    if not isinstance(question, str):
        raise ValueError(f"question is a {type(question).__name__}, not text")
    if len(question) > max_chars:
        raise ValueError(f"question longer than {max_chars} characters (task.max_question_chars)")
    rationale = fields.get("rationale")
    if rationale is not None and not isinstance(rationale, str):
        raise ValueError(f"rationale is a {type(rationale).__name__}, not text")
    question = question_text(task, question)
    try:
        solver = task.gold_answer(question)
    except Exception as e:  # the scripted expert and gold examples need the solver
        solver = e
    if "answer" not in fields:  # text layout: the file holds no answer
        if isinstance(solver, Exception):
            raise ValueError(f"the task's solver cannot answer it ({solver})")
        report.answers_from_solver += 1
        answer = task.normalize_answer(solver)
    else:
        answer = task.answer_from_data(fields["answer"])
    try:
        ex = task.example_from_file(question, answer, rationale=rationale or None, cell=fields.get("cell"))
    except KeyError as e:
        raise ValueError(str(e).strip("'\"")) from None
    # The file's answer is kept either way; a contradiction is reported, never silently trusted
    # (e.g. a BIG-Bench Hard date item none of whose options holds the right date).
    said = f"none ({solver})" if isinstance(solver, Exception) else task.normalize_answer(solver)
    has_solver = getattr(task, "has_solver", True)  # task=custom: no solver, nothing to contradict
    if has_solver and (isinstance(solver, Exception) or not task.answers_match(said, ex.answer)):
        report.disagreements += 1
        if len(report.disagreement_examples) < SHOWN:
            report.disagreement_examples.append({"where": where, "file": ex.answer, "solver": said})
    return ex


# ---------------------------------------------------------------------------- files
def load_file(task: Task, path: str | Path, layout: str = "auto", split: str | None = None, strict: bool = False,
              max_question_chars: int = 20_000) -> Loaded:
    """Every usable item of a data file; see the module docstring for layouts and skipping."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file not found: {path}")
    if layout not in LAYOUTS:
        raise DataFileError(f"{path}: unknown layout {layout!r}; choose one of {LAYOUTS}")
    if _blank(path):
        raise DataFileError(f"{path}: the file is empty")
    layout = detect_layout(path) if layout == "auto" else layout
    report = LoadReport(str(path), layout, split if layout != "bigbench" else None)
    items = _bigbench_items(path) if layout == "bigbench" else _jsonl_rows(path)
    examples, texts = [], []
    for where, item in items:
        try:
            if isinstance(item, Exception):
                raise item
            fields = _fields(layout, item)
        except ValueError as e:
            report.items += 1
            report.skip(where, str(e))
            continue
        if report.split and fields.get("split") not in (None, report.split):
            report.other_split += 1
            continue
        report.items += 1
        try:
            examples.append(_example(task, fields, max_question_chars, report, where))
        except ValueError as e:
            report.skip(where, str(e))
            continue
        if "text" in fields:
            texts.append(fields["text"])
    report.loaded = len(examples)
    if strict and report.skipped:
        raise DataFileError(f"{report.summary()} (strict: every item must load)")
    if not examples:
        raise DataFileError(f"{path}: no usable question ({report.summary()})")
    return Loaded(examples, texts, report)


def load_examples(task: Task, path: str | Path, fmt: str = "auto", split: str | None = None) -> list[Example]:
    """The examples of a file (skipped items counted in the report load_file returns)."""
    return load_file(task, path, fmt, split).examples


def load_bigbench(task: Task, path: str | Path) -> list[Example]:
    return load_file(task, path, "bigbench").examples


# ---------------------------------------------------------------------------- writing
def to_paper_record(ex: Example) -> dict[str, Any]:
    """An Example as our data files keep it (the jsonl layout, with our cell in meta_data)."""
    return {
        "question": ex.question,
        "rationale": ex.rationale,
        "correct_answer": ex.answer,
        "meta_data": {"cell": ex.cell, "seen": ex.seen, **ex.meta},
    }


def _rationale(task: Task, ex: Example) -> str:
    """The example's rationale, else the task's gold one; empty when the solver has none (a
    question none of whose options holds the right answer)."""
    if ex.rationale:
        return ex.rationale.rstrip("\n")
    try:
        return task.gold_rationale(ex.question)
    except Exception:  # noqa: BLE001 - exported as it is, with no rationale
        return ""


def raw_pool_record(task: Task, ex: Example, split: str, idx: int) -> dict[str, Any]:
    """An Example in the paper's raw-pool layout (``data/raw/<task>_*.jsonl``)."""
    fields = task.reference_fields(ex)
    record = {"question": fields["question_line"], "rationale": _rationale(task, ex)}
    record.update(fields["answer_fields"])
    record["meta_data"] = {"split": split, "new_split": split, "idx": idx, **fields["meta"]}
    return record


def rationale_file_record(task: Task, ex: Example) -> dict[str, Any]:
    """An Example in the paper's training-file layout (``data/training/<task>/*_rationale_*.jsonl``)."""
    fields = task.reference_fields(ex)
    rationale = _rationale(task, ex)
    meta = {"question": fields["question"], "answer": fields["answer"], "rationale": rationale}
    if fields.get("formatted_choices"):
        meta["formatted_choices"] = fields["formatted_choices"]
    return {"text": task.prompt(ex.question) + rationale, "text_att_start_text": "\nAnswer:", "meta_data": meta}
