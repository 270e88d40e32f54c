"""How our scripted OpenAI-compatible server reads a request: the last request block of a prompt.

The expert writes every request in blocks with marker lines of their own (``tripost.experts.prompts``);
this reads the final block back: FBK on (question, attempt), IMP of it given the feedback, or an
ATT question. Only the test server needs it: a real LLM reads the prompt itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from tripost.experts.base import ExpertError
from tripost.experts.prompts import (
    ATT,
    ATT_SLOT,
    ATTEMPT_MARK,
    FBK,
    FBK_SLOT,
    FEEDBACK_MARK,
    IMP,
    IMP_SLOT,
    MARKERS,
    QUESTION_MARK,
    parse_fbk_reply,
)
from tripost.formats import ANSWER_HEADER, Feedback


@dataclass(frozen=True)
class ParsedRequest:
    """What a final request asks: FBK on (question, attempt), IMP of it given ``feedback``, or ATT."""

    role: str  # "fbk" | "imp" | "att"
    question: str
    attempt: str
    feedback: Feedback | None = None


def _sections(block: str) -> dict[str, list[str]]:
    """Lines under each marker of one request block; text after a slot line is kept under it."""
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in block.split("\n"):
        if line.strip() in MARKERS:
            current = line.strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


def parse_request(text: str) -> ParsedRequest:
    """The last request block of a completion prompt or of a chat message's text.

    Raises ValueError when the text holds no complete FBK, IMP or ATT request."""
    start = text.rfind(f"{QUESTION_MARK}\n")
    if start < 0 or (start > 0 and text[start - 1] != "\n"):
        raise ValueError(f"no {QUESTION_MARK} line in the request")
    sections = _sections(text[start:])
    question_lines = sections.get(QUESTION_MARK, [])
    if ATT_SLOT in sections and question_lines and question_lines[0].startswith("Q: "):
        return ParsedRequest(ATT, "\n".join(question_lines)[len("Q: "):].strip("\n"), "")
    attempt_lines = sections.get(ATTEMPT_MARK)
    if not question_lines or not question_lines[0].startswith("Q: ") or attempt_lines is None:
        raise ValueError("the request has no 'Q: ...' question and attempt")
    question = "\n".join(question_lines)[len("Q: "):].strip("\n")
    if attempt_lines and attempt_lines[0].startswith(ANSWER_HEADER):
        attempt_lines = attempt_lines[1:]
    attempt = "\n".join(attempt_lines).strip("\n") + "\n"
    if FBK_SLOT in sections:
        return ParsedRequest(FBK, question, attempt)
    if IMP_SLOT in sections and FEEDBACK_MARK in sections:
        try:
            feedback = parse_fbk_reply("\n".join(sections[FEEDBACK_MARK]), attempt)
        except ExpertError as e:
            raise ValueError(f"the IMP request's feedback cannot be read: {e}") from None
        return ParsedRequest(IMP, question, attempt, feedback)
    raise ValueError(f"the request has neither {FBK_SLOT} nor {FEEDBACK_MARK} and {IMP_SLOT}")


def parse_chat_request(messages: list[dict]) -> ParsedRequest:
    """The request of the last user message of a chat."""
    users = [m for m in messages if m.get("role") == "user"]
    if not users:
        raise ValueError("the chat has no user message")
    content = users[-1].get("content")
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise ValueError("the last user message has no text")
    return parse_request(content)


def parse_completion_request(prompt) -> ParsedRequest:
    """The request of a completion body's ``prompt``: one string (or a list of exactly one)."""
    if isinstance(prompt, list):
        prompt = prompt[0] if len(prompt) == 1 else None
    if not isinstance(prompt, str):
        raise ValueError("the prompt must be one string")
    return parse_request(prompt)
