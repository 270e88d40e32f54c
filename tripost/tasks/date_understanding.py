"""Date understanding (BIG-Bench style): generator, solver, gold rationales, parsing and the checker.

A question gives a day in words and asks for a date relative to today, with options::

    Yesterday was March 3, 2017. What is the date tomorrow in MM/DD/YYYY?
    Options:
    (A) 03/05/2017
    (B) 03/04/2017
    ...

The solver reads the question into a *plan*: the days to find, in order, each either given by
the question (a written date or a special day, "Halloween of 1953") or a fixed offset from an
earlier day ("1 day after yesterday"). The gold rationale (our phrasing, the generator's) has
one step per day of the plan, then one step naming the option, then the final response (SPEC 4,
info empty), and no newline at its end (SPEC 9)::

    (1) Yesterday is March 3, 2017, which is 03/03/2017.
    (2) Today is 1 day after yesterday, 03/03/2017, which is 03/04/2017.
    (3) Tomorrow is 1 day after today, 03/04/2017, which is 03/05/2017.
    (4) 03/05/2017 is option (A).
    (Final response) So the answer is (A).

Step grammar (dates are MM/DD/YYYY):
- given day:   "<Day> is <the question's words for it>, which is <date>."
- offset day:  "<Day> is <n> <days|weeks|months|years> <before|after> <earlier day>, <its date>, which is <date>."
- option:      "<date> is option (<letter>)."  (always the last numbered step)

The number of *reasoning steps* (the numbered steps before the option step) is the length of
the plan; it names the cell: "s1", "s2" (seen) and "s3", "s4" (unseen; "s4" holds every
question of 4 or more reasoning steps), SPEC 3. A plan goes through today unless the asked
day is the given day itself, and reuses a day already found ("one week from yesterday" after
"Yesterday was ..."). ``cell_of`` places every question the solver reads, even one whose
options miss the solver's date (BIG-Bench Hard has such items); it raises QuestionError (a
ValueError) with the reason on one it cannot read.

Calendar convention, BIG-Bench Hard's where it and the paper's rationales agree: adding months
or years keeps the day of the month and clamps it to the month's last day (01/31 + 1 month =
02/28 or 02/29; 02/29/2016 - 1 year = 02/28/2015); a week is 7 days; "N hours later" needs N a
multiple of 24; "<year> is coming in N hours" puts today ceil(N / 24) days before the old year's
last day (36 hours: 12/29); N things used up k a day from the day they were bought run out
N / k days after it; a work anniversary counts from the first day at work, the day before the
"second day at work". Holidays are US ones (Independence Day is July 4, Thanksgiving the
fourth Thursday of November).

The checker (SPEC 5) reads two phrasings. Ours (every step in the grammar above, with an option
step) is aligned step by step with the plan and the first failure reported: a day that is not the one the plan finds next, words or an offset that
are not the question's, a given day dated wrongly, an earlier date carried forward wrongly, an
offset computed wrongly, a step too many or too few, an option step whose date or letter is
wrong, a final letter that is not the option step's. The paper's free phrasing ("(1) If today
is ..., then today's date is September 30, 1999.", "(2) One week from today is October 7, 1999,
that is 10/07/1999.", no option step), and any mix, is read claim by claim (``read_claims``,
``judge``): the first date a step gets wrong, then the last step must give the asked day's date
and the final response its letter.
"""

from __future__ import annotations

import calendar
import math
import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from tripost.formats import FINAL_STEP, Feedback, Step, final_response, split_steps
from tripost.tasks.base import Cell, Example, Task, Unreadable, numbered_steps

MAX_STEPS_CELL = 4  # cell "s4" holds 4 or more reasoning steps
SEEN_STEPS = (1, 2)


class QuestionError(ValueError):
    """A question the solver cannot read."""


# =================================================================== calendar


def fmt(day: date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def read_mdy(text: str) -> date | None:
    """A MM/DD/YYYY date (zero padding optional); None if not a real calendar date."""
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text.strip())
    return _make_date(int(m.group(3)), int(m.group(1)), int(m.group(2))) if m else None


def _make_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def last_day_of_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


UNIT_DAYS = {"day": 1, "week": 7}
UNIT_MONTHS = {"month": 1, "year": 12}


@dataclass(frozen=True)
class Offset:
    """``amount`` days/weeks/months/years (amount > 0) forward (sign +1) or back (-1)."""

    amount: int
    unit: str  # "day", "week", "month" or "year"
    sign: int

    @property
    def text(self) -> str:
        """"10 days before", "1 year after"."""
        plural = "" if self.amount == 1 else "s"
        return f"{self.amount} {self.unit}{plural} {'after' if self.sign > 0 else 'before'}"

    def canonical(self) -> tuple[str, int]:
        """Offsets that always give the same date compare equal: 1 week = 7 days, 1 year = 12 months."""
        if self.unit in UNIT_DAYS:
            return "day", self.sign * self.amount * UNIT_DAYS[self.unit]
        return "month", self.sign * self.amount * UNIT_MONTHS[self.unit]

    def apply(self, day: date) -> date:
        """The date this offset away from ``day``; ValueError outside years 1..9999."""
        kind, amount = self.canonical()
        try:
            if kind == "day":
                return day + timedelta(days=amount)
            index = day.year * 12 + day.month - 1 + amount
            year, month = divmod(index, 12)
            return date(year, month + 1, min(day.day, last_day_of_month(year, month + 1)))
        except (OverflowError, ValueError, calendar.IllegalMonthError):
            raise ValueError(f"{self.text} {fmt(day)} is outside the calendar") from None


# =================================================================== words for dates

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
_MONTH_NUMBER = {name.lower(): i for i, name in enumerate(MONTHS, start=1)}
_MONTH_NUMBER.update({name[:3].lower(): i for i, name in enumerate(MONTHS, start=1)})
_MONTH_NUMBER.update({"sept": 9, "feburary": 2})  # both as BIG-Bench writes them
MONTH = r"(?:January|February|Feburary|March|April|May|June|July|August|September|October|November|December" \
        r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WEEKDAY = "(?:" + "|".join(WEEKDAYS) + ")"
ORDINAL_WORDS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
                 "eleventh", "twelfth"]
ORDINAL_WORD = "(?:" + "|".join(ORDINAL_WORDS) + ")"
NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30}
NUM = r"(?:\d+|" + "|".join(NUMBER_WORDS) + ")"
UNIT = r"(?:days?|weeks?|months?|years?)"
APOSTROPHE = "['\u2019]"


def month_number(word: str) -> int:
    return _MONTH_NUMBER[word.rstrip(".").lower()]


def number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word.lower()]


def suffixed(n: int) -> str:
    """1 -> "1st", 12 -> "12th", 22 -> "22nd"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def nth_weekday(year: int, month: int, weekday: int, which: str) -> date:
    """The first..fourth or last given weekday (0 = Monday) of a month."""
    days = [d for d in range(1, last_day_of_month(year, month) + 1) if date(year, month, d).weekday() == weekday]
    day = days[-1] if which == "last" else days[ORDINAL_WORDS.index(which)]
    return date(year, month, day)


def palindrome_day(year: int) -> date | None:
    """The day whose MMDDYYYY reads the same backwards, if the year has one."""
    mirrored = f"{year:04d}"[::-1]
    return _make_date(year, int(mirrored[:2]), int(mirrored[2:]))


HOLIDAYS = {  # US holidays by their names in questions: year -> date
    "christmas eve": lambda y: date(y, 12, 24),
    "christmas day": lambda y: date(y, 12, 25),
    "christmas": lambda y: date(y, 12, 25),
    "new year's eve": lambda y: date(y, 12, 31),
    "new year's day": lambda y: date(y, 1, 1),
    "independence day": lambda y: date(y, 7, 4),
    "halloween": lambda y: date(y, 10, 31),
    "valentine's day": lambda y: date(y, 2, 14),
    "thanksgiving day": lambda y: nth_weekday(y, 11, 3, "fourth"),
    "thanksgiving": lambda y: nth_weekday(y, 11, 3, "fourth"),
}
_HOLIDAY = "(?:" + "|".join(re.escape(h).replace("'", APOSTROPHE) for h in HOLIDAYS) + ")"
_QUARTER_END = {"first": (3, 31), "second": (6, 30), "third": (9, 30), "fourth": (12, 31)}


def _numeric(m: re.Match, day_first: bool) -> date | None:
    a, b, year = int(m["a"]), int(m["b"]), int(m["y"])
    return _make_date(year, b, a) if day_first else _make_date(year, a, b)


def _first_or_last_day(m: re.Match, day_first: bool) -> date:
    year = int(m["y"])
    if m["m"]:
        month = month_number(m["m"])
        return date(year, month, 1 if m["which"].lower() == "first" else last_day_of_month(year, month))
    return date(year, 1, 1) if m["which"].lower() == "first" else date(year, 12, 31)


def nth_weekday_of_year(year: int, weekday: int, which: str) -> date:
    """The first..fourth or last given weekday of a year."""
    if which == "last":
        return nth_weekday(year, 12, weekday, "last")
    first = date(year, 1, 1) + timedelta(days=(weekday - date(year, 1, 1).weekday()) % 7)
    return first + timedelta(weeks=ORDINAL_WORDS.index(which))


def _weekday_of(m: re.Match, day_first: bool) -> date:
    weekday = WEEKDAYS.index(m["wd"].capitalize())
    year, which = int(m["y"]), m["which"].lower()
    if m["m"]:
        return nth_weekday(year, month_number(m["m"]), weekday, which)
    return nth_weekday_of_year(year, weekday, which)


# Every way a question may write a full date, as (regex, reader); the earliest match in a text
# wins (the longest on a tie). Readers return None for an impossible date (02/30/2021).
_DATE_FORMS = [
    (r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4})\b", _numeric),
    (r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b", lambda m, _: _make_date(int(m["y"]), int(m["m"]), int(m["d"]))),
    (rf"\b(?P<m>{MONTH})\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b",
     lambda m, _: _make_date(int(m["y"]), month_number(m["m"]), int(m["d"]))),
    (rf"\b(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<m>{MONTH}),?\s+(?P<y>\d{{4}})\b",
     lambda m, _: _make_date(int(m["y"]), month_number(m["m"]), int(m["d"]))),
    (rf"\b(?P<h>{_HOLIDAY})\s+(?:of|in)\s+(?P<y>\d{{4}})\b",
     lambda m, _: HOLIDAYS[m["h"].lower().replace("\u2019", "'")](int(m["y"]))),
    (rf"\bthe\s+(?P<which>first|last)\s+day\s+of\s+(?:(?:the\s+)?(?P<m>{MONTH})\s+(?:of\s+|in\s+)?)?(?P<y>\d{{4}})\b",
     _first_or_last_day),
    (rf"\bthe\s+(?P<which>first|second|third|fourth|last)\s+(?P<wd>{WEEKDAY})\s+of\s+(?:(?P<m>{MONTH})\s+(?:of\s+|in\s+)?)?"
     rf"(?P<y>\d{{4}})\b", _weekday_of),
    (r"\bthe\s+last\s+day\s+of\s+the\s+(?P<q>first|second|third|fourth)\s+quarter\s+of\s+(?P<y>\d{4})\b",
     lambda m, _: date(int(m["y"]), *_QUARTER_END[m["q"].lower()])),
    (rf"\bthe\s+(?P<d>{ORDINAL_WORD})\s+day\s+of\s+the\s+(?P<m>{ORDINAL_WORD})\s+month\s+of\s+(?P<y>\d{{4}})\b",
     lambda m, _: _make_date(int(m["y"]), ORDINAL_WORDS.index(m["m"].lower()) + 1, ORDINAL_WORDS.index(m["d"].lower()) + 1)),
    (r"\bthe\s+palindrome\s+day\s+of\s+(?P<y>\d{4})\b", lambda m, _: palindrome_day(int(m["y"]))),
]
_DATE_FORMS = [(re.compile(pattern, re.I), reader) for pattern, reader in _DATE_FORMS]
# A month and day without a year ("3/5", "Mar 12"); the year comes from elsewhere in the question.
_NO_YEAR_FORMS = [
    (re.compile(r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})\b(?!/\d)"), lambda m, y: _make_date(y, int(m["a"]), int(m["b"]))),
    (re.compile(rf"\b(?P<m>{MONTH})\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?!,?\s*\d{{4}})", re.I),
     lambda m, y: _make_date(y, month_number(m["m"]), int(m["d"]))),
]
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")


@dataclass(frozen=True)
class Mention:
    """A date written in a question: its words, where they are, and the date they mean."""

    text: str
    start: int
    end: int
    date: date


def find_date(text: str, start: int = 0, day_first: bool = False) -> Mention | None:
    """The first full date written in ``text`` from ``start`` on (None if none or impossible)."""
    best = None
    for pattern, reader in _DATE_FORMS:
        m = pattern.search(text, start)
        if m and (best is None or (m.start(), -m.end()) < (best[0].start(), -best[0].end())):
            best = (m, reader)
    if best is None:
        return None
    m, reader = best
    day = reader(m, day_first)
    if day is None:
        return None
    words = m.group(0)
    if day_first and reader is _numeric:
        words += " written day first"
    return Mention(words, m.start(), m.end(), day)


def find_yearless_date(text: str, start: int = 0, year: int | None = None) -> Mention | None:
    """A month and day with no year, dated in ``year`` or else the first year the text names elsewhere."""
    if year is None:
        named = _YEAR.search(text)
        if named is None:
            return None
        year = int(named.group(1))
    for pattern, reader in _NO_YEAR_FORMS:
        m = pattern.search(text, start)
        if m:
            day = reader(m, year)
            return Mention(f"{m.group(0)} of {year}", m.start(), m.end(), day) if day else None
    return None


def read_date_words(text: str, day_first: bool = False) -> Mention | None:
    """``text`` as one date expression, the whole of it (trailing punctuation aside)."""
    text = text.strip().rstrip(".,")
    found = find_date(text, day_first=day_first)
    return found if found is not None and found.start == 0 and found.end == len(text) else None


# =================================================================== plans


@dataclass(frozen=True)
class PlanStep:
    """One day the solver finds: given by the question (``expression``) or an offset from ``source``."""

    name: str  # "today", "yesterday", "the date 10 days ago", "Ben's birth date"
    date: date
    expression: str | None = None  # the question's words for it, for a given day
    offset: Offset | None = None  # for an offset day
    source: str | None = None  # the earlier day the offset starts from

    @property
    def is_given(self) -> bool:
        return self.expression is not None


@dataclass(frozen=True)
class Link:
    """A day defined from another: ``name`` is ``offset`` from ``source``."""

    name: str
    offset: Offset
    source: str


@dataclass(frozen=True)
class Solution:
    """What the solver made of a question: the plan and the options."""

    steps: tuple[PlanStep, ...]
    options: tuple[tuple[str, date], ...]  # ("A", date), ...
    today: date  # found even when the plan does not pass through today ("... What is the date yesterday?")

    @property
    def answer_date(self) -> date:
        return self.steps[-1].date

    @property
    def target(self) -> PlanStep:
        return self.steps[-1]

    def letter_of(self, day: date) -> str | None:
        letters = [letter for letter, d in self.options if d == day]
        return letters[0] if len(letters) == 1 else None

    def option_date(self, letter: str) -> date | None:
        return next((d for x, d in self.options if x == letter), None)


def normalize_name(name: str) -> str:
    return " ".join(name.lower().split())


# Day words and how today follows from them.
DAY_WORDS = {
    "today": None,
    "yesterday": Offset(1, "day", +1),
    "tomorrow": Offset(1, "day", -1),
    "the day before yesterday": Offset(2, "day", +1),
    "the day after tomorrow": Offset(2, "day", -1),
}
DAY_WORD = "(?:the day before yesterday|the day after tomorrow|yesterday|tomorrow|today)"
_KEYWORD = re.compile(rf"\b(?:(?P<word>{DAY_WORD})|(?P<n>{NUM}) (?P<unit>{UNIT}) ago)\b", re.I)


def _unit(word: str) -> str:
    return word.lower().rstrip("s")


def _reference(match: re.Match) -> tuple[str, Offset | None]:
    """The day a keyword names and the offset from it to today."""
    if match["word"]:
        word = match["word"].lower()
        return word, DAY_WORDS[word]
    amount, unit = number(match["n"]), _unit(match["unit"])
    return f"the date {match.group(0).lower()}", Offset(amount, unit, +1)


@dataclass
class Context:
    """The days a question's context gives: found steps, and how today follows from the last."""

    steps: list[PlanStep]
    to_today: Link | None = None  # None when the last step is today


def _given(name: str, mention: Mention) -> PlanStep:
    return PlanStep(name, mention.date, expression=mention.text)


def _linked(link: Link, known: dict[str, PlanStep]) -> PlanStep:
    source = known[normalize_name(link.source)]
    return PlanStep(link.name, link.offset.apply(source.date), offset=link.offset, source=link.source)


def _chain(first: PlanStep, *links: Link) -> Context:
    steps, known = [first], {normalize_name(first.name): first}
    for link in links:
        steps.append(_linked(link, known))
        known[normalize_name(link.name)] = steps[-1]
    return Context(steps)


def _need(mention: Mention | None) -> Mention:
    if mention is None:
        raise QuestionError("no date found where one is expected")
    return mention


# ------------------------------------------------------------------ contexts with a story
# Each reader returns a Context or None when its story is not the question's.


def _born(text: str) -> Context | None:
    m = re.search(r"(?P<who>[A-Z][a-z]+) was born on (?P<rest>.+?)\.\s+(?:Today|It) is (?:his|her|their) "
                  r"(?P<n>\d+)(?:-year-old|st|nd|rd|th)? birthday", text)
    if not m:
        return None
    born = _given(f"{m['who']}'s birth date", _need(read_date_words(m["rest"])))
    return _chain(born, Link("today", Offset(int(m["n"]), "year", +1), born.name))


_ANNIVERSARY_WORDS = {"golden": 50, "silver": 25, "ruby": 40, "diamond": 60}


def _married(text: str) -> Context | None:
    m = re.search(rf"(?:got )?married on (?P<rest>.+?)\.\s+(?:It is|Today is) their (?:(?P<n>\d+)(?:-year|st|nd|rd|th)?|"
                  rf"(?P<word>{'|'.join(_ANNIVERSARY_WORDS)})) (?:wedding )?anniversary", text, re.I)
    if not m:
        return None
    years = int(m["n"]) if m["n"] else _ANNIVERSARY_WORDS[m["word"].lower()]
    wedding = _given("the wedding day", _need(read_date_words(m["rest"])))
    return _chain(wedding, Link("today", Offset(years, "year", +1), wedding.name))


def _passed_since(text: str) -> Context | None:
    m = re.search(rf"(?P<who>[A-Z][a-z]+) (?P<event>[a-z][^.]*?) on (?P<rest>.+?)\.\s+(?P<n>{NUM}) (?P<unit>{UNIT}) "
                  rf"(?:have|has) passed since then", text)
    if not m or " is " in m["event"]:
        return None
    event = _given(f"the day {m['who']} {m['event']}", _need(read_date_words(m["rest"])))
    return _chain(event, Link("today", Offset(number(m["n"]), _unit(m["unit"]), +1), event.name))


def _days_away(text: str) -> Context | None:
    m = re.search(rf"\b(?P<thing>[Tt]he [a-z]+) is (?P<rest>.+?), which is (?P<n>{NUM}) (?P<unit>{UNIT}) away from "
                  rf"(?:now|today)", text)
    if not m:
        return None
    thing = _given(m["thing"].lower(), _need(read_date_words(m["rest"])))
    return _chain(thing, Link("today", Offset(number(m["n"]), _unit(m["unit"]), -1), thing.name))


def _moved_to_today(text: str) -> Context | None:
    m = re.search(rf"(?:scheduled|supposed|planned) to be on (?P<rest>.+?),? but was (?P<how>delayed|postponed|moved forward|"
                  rf"brought forward) by (?P<n>{NUM}) (?P<unit>{UNIT}) to today", text, re.I)
    if not m:
        return None
    sign = +1 if m["how"].lower() in ("delayed", "postponed") else -1
    planned = _given("the scheduled day", _need(read_date_words(m["rest"])))
    return _chain(planned, Link("today", Offset(number(m["n"]), _unit(m["unit"]), sign), planned.name))


def _actually_ago(text: str) -> Context | None:
    m = re.search(rf"^(?P<rest>.+?) is like yesterday to \w+, but that is actually (?P<n>{NUM}) (?P<unit>{UNIT}) ago", text)
    if not m:
        return None
    name = f"the date {m['n'].lower()} {m['unit'].lower()} ago"
    then = _given(name, _need(read_date_words(m["rest"])))
    return _chain(then, Link("today", Offset(number(m["n"]), _unit(m["unit"]), +1), name))


def _who_is_right(text: str) -> Context | None:
    m = re.search(r"(?P<a>[A-Z]\w*) thinks today is (?P<ea>.+?),? but (?P<b>[A-Z]\w*) thinks today is (?P<eb>.+?)\.\s+"
                  r"(?P<c>[A-Z]\w*) is (?:correct|right)", text)
    if not m or m["c"] not in (m["a"], m["b"]):
        return None
    words = m["ea"] if m["c"] == m["a"] else m["eb"]
    return Context([_given("today", _need(read_date_words(words)))])


def _monthly_visits(text: str) -> Context | None:
    m = re.search(rf"on the (?P<d>\d{{1,2}})(?:st|nd|rd|th) of (?:each|every) month starting from (?:the )?(?P<m>{MONTH}) "
                  rf"(?:of |in )?(?P<y>\d{{4}})\.\s+(?:It|Today) is (?:his|her|their) (?P<n>\d+)(?:st|nd|rd|th) visit", text)
    if not m:
        return None
    month = month_number(m["m"])
    first_day = _make_date(int(m["y"]), month, int(m["d"]))
    if first_day is None:
        raise QuestionError("the first visit is not a real date")
    words, visits = f"the {suffixed(int(m['d']))} of {MONTHS[month - 1]} {m['y']}", int(m["n"])
    if visits == 1:
        return Context([PlanStep("today", first_day, expression=words)])
    first = PlanStep("the first visit", first_day, expression=words)
    return _chain(first, Link("today", Offset(visits - 1, "month", +1), first.name))


def _year_coming(text: str) -> Context | None:
    """"2031 is coming in 36 hours": BIG-Bench Hard's targets and the paper's rationales date
    today as 12/29 of the old year (12/29/2030), not 12/30: the hours, rounded up to whole days
    (2), are counted back from the old year's last day. "coming in N days" counts N days back
    from the new year's first day."""
    m = re.search(rf"\b(?P<y>\d{{4}}) is coming in (?P<n>{NUM}) (?P<unit>hours?|days?)\b", text)
    if not m:
        return None
    year, amount = int(m["y"]), number(m["n"])
    if m["unit"].startswith("hour"):
        last = PlanStep(f"the last day of {year - 1}", date(year - 1, 12, 31), expression=f"December 31, {year - 1}")
        return _chain(last, Link("today", Offset(math.ceil(amount / 24), "day", -1), last.name))
    new_year = PlanStep(f"the first day of {year}", date(year, 1, 1), expression=f"January 1, {year}")
    return _chain(new_year, Link("today", Offset(amount, "day", -1), new_year.name))


def _ran_out(text: str) -> Context | None:
    """"On Aug 3rd, 2021 Rosa bought 30 apples. She ate one per day. Today she ran out of apples.":
    eating starts on the day of buying, so the last apple goes on day 29 and today is 30 days
    after it (09/02/2021), as BIG-Bench Hard and the paper's rationales count."""
    m = re.search(rf"(?:\bOn (?P<on>[^.]+?),? )?(?P<who>[A-Z][a-z]+) bought (?P<n>{NUM}) (?P<things>[a-z]+)"
                  rf"(?: on (?P<after>[^.]+?))?\.\s+(?:She|He|They) (?:ate|used|drank|ate up) (?P<rate>{NUM}) "
                  rf"(?:per|a|each) day\.\s+Today (?:she|he|they) ran out", text)
    if not m or not (m["on"] or m["after"]):
        return None
    amount, rate = number(m["n"]), number(m["rate"])
    if rate == 0 or amount % rate:
        raise QuestionError(f"{amount} {m['things']} at {rate} a day do not last a whole number of days")
    bought = _given(f"the day {m['who']} bought the {m['things']}", _need(read_date_words(m["on"] or m["after"])))
    return _chain(bought, Link("today", Offset(amount // rate, "day", +1), bought.name))


def _work_anniversary(text: str) -> Context | None:
    """"Ella got her job in 2011. Today is her 4-year work anniversary. ... on Sep 15, her second
    day at work, ...": the job started the day before (09/14/2011) and today is 4 years after
    that (09/14/2015), as BIG-Bench Hard and the paper's rationales count. A job started on a
    full date needs no second sentence."""
    m = re.search(r"(?P<who>[A-Z][a-z]+) (?:got|started|began) (?:her|his|their) (?:new )?job (?:on|in) (?P<when>[^.]+?)\.\s+"
                  r"Today is (?:her|his|their) (?P<n>\d+)-year work anniversary", text)
    if not m:
        return None
    who, years = m["who"], int(m["n"])
    first_name = f"{who}'s first day at work"
    later = re.search(rf"\bon (?P<day>[^,.]+), (?:her|his|their) (?P<nth>{ORDINAL_WORD}) day at work", text, re.I)
    if later is None:
        first = _given(first_name, _need(read_date_words(m["when"])))
        return _chain(first, Link("today", Offset(years, "year", +1), first_name))
    nth = ORDINAL_WORDS.index(later["nth"].lower()) + 1
    day = read_date_words(later["day"]) or _in_year(later["day"], m["when"])
    named = _given(f"{who}'s {later['nth'].lower()} day at work", _need(day))
    if nth == 1:
        return _chain(PlanStep(first_name, named.date, expression=named.expression),
                      Link("today", Offset(years, "year", +1), first_name))
    return _chain(named, Link(first_name, Offset(nth - 1, "day", -1), named.name),
                  Link("today", Offset(years, "year", +1), first_name))


def _in_year(words: str, year_words: str) -> Mention | None:
    """A month and day ("Dec 2") dated in the year other words give ("2016")."""
    year = re.fullmatch(r"\s*(\d{4})\s*", year_words)
    return find_yearless_date(words.strip(), year=int(year.group(1))) if year else None


_STORIES = [_born, _married, _passed_since, _days_away, _moved_to_today, _actually_ago, _who_is_right, _monthly_visits,
            _year_coming, _ran_out, _work_anniversary]


# ------------------------------------------------------------------ the plain context: a day and its date


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The sentence around text[start:end]: a sentence ends at . ! ? before a capital or the end."""
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s+[A-Z]|\s*$)", text)]
    before = max([e for e in ends if e <= start], default=0)
    after = min([e for e in ends if e >= end], default=len(text))
    return before, after


def _dated_day(text: str, mention: Mention) -> tuple[str, Offset | None]:
    """The day a date belongs to: the nearest day keyword before it in its sentence, else the
    first after it, else today ("This is the last day of 1899.")."""
    lo, hi = _sentence_bounds(text, mention.start, mention.end)
    before = list(_KEYWORD.finditer(text, lo, mention.start))
    if before:
        return _reference(before[-1])
    after = _KEYWORD.search(text, mention.end, hi)
    return _reference(after) if after else ("today", None)


_DIRECT = re.compile(rf"\b(?P<word>{DAY_WORD}) (?:is|was|will be) ", re.I)


def _plain(text: str) -> Context:
    """A context that dates one day: "Yesterday was March 3, 2017.", "It is 7/22/1983 today."."""
    day_first = re.search(r"day before the month", text, re.I) is not None  # the UK way: DD/MM/YYYY
    in_fact = re.search(r"\bin fact\b", text)  # "Ruth thought today is ..., but today is in fact May 21"
    start = in_fact.end() if in_fact else 0
    direct = _DIRECT.search(text, start)  # "today is <date>" says best which day the date is
    if direct:
        mention = find_date(text, direct.end(), day_first) or find_yearless_date(text, direct.end())
        if mention is not None and mention.start == direct.end():
            return _one_day(*_reference(direct), mention)
    mention = find_date(text, start, day_first) or find_yearless_date(text, start)
    if mention is None:
        raise QuestionError("the question gives no date")
    return _one_day(*_dated_day(text, mention), mention)


def _one_day(name: str, to_today: Offset | None, mention: Mention) -> Context:
    return Context([_given(name, mention)], Link("today", to_today, name) if to_today else None)


def read_context(text: str) -> Context:
    for story in _STORIES:
        context = story(text)
        if context is not None:
            return context
    return _plain(text)


# ------------------------------------------------------------------ the asked day


_OFFSETS = rf"{NUM} (?:{UNIT}|hours?)(?: and {NUM} {UNIT})?"
_TARGET = re.compile(
    rf"(?P<off>{_OFFSETS}) (?:(?P<ago>ago)(?: from today)?|(?P<dir>from|after|before) (?P<base>{DAY_WORD}|now)|(?P<later>later))",
    re.I,
)


def _offset_part(words: str, sign: int) -> Offset:
    amount, unit = words.split(" ", 1)
    n, unit = number(amount), _unit(unit)
    if unit == "hour":
        if n % 24:
            raise QuestionError(f"{words} is not a whole number of days")
        return Offset(n // 24, "day", sign)
    return Offset(n, unit, sign)


def read_target(phrase: str) -> tuple[str, list[Link]]:
    """The asked day's name and the links from today to it, e.g. "a month and a day ago" ->
    [the date a month ago = 1 month before today, the date a month and a day ago = 1 day before that]."""
    phrase = " ".join(phrase.split())
    lower = phrase.lower()
    if lower in DAY_WORDS:
        offset = DAY_WORDS[lower]
        return lower, [] if offset is None else [Link(lower, Offset(offset.amount, "day", -offset.sign), "today")]
    m = _TARGET.fullmatch(phrase)
    if m is None:
        raise QuestionError(f"cannot read the asked day {phrase!r}")
    sign = -1 if m["ago"] or (m["dir"] or "").lower() == "before" else +1
    base = (m["base"] or "today").lower()
    base = "today" if base == "now" else base
    links = [] if base == "today" else read_target(base)[1]
    relation = lower[len(m["off"]):].strip()
    parts = m["off"].split(" and ")
    source = base
    for i in range(len(parts)):
        name = f"the date {' and '.join(parts[: i + 1]).lower()} {relation}"
        links.append(Link(name, _offset_part(parts[i], sign), source))
        source = name
    return links[-1].name, links


# ------------------------------------------------------------------ the whole question

_ASK = re.compile(r"What is the date (?P<target>.+?) in MM/DD/YYYY\?", re.I)
_OPTION = re.compile(r"\((?P<letter>[A-Z])\)\s*(?P<date>\d{1,2}/\d{1,2}/\d{4})")


def split_question(question: str) -> tuple[str, str, str]:
    """(context, asked day, options text) of a question."""
    stem, _, options = question.partition("Options:")
    ask = _ASK.search(stem)
    if ask is None:
        raise QuestionError("no 'What is the date ... in MM/DD/YYYY?'")
    return " ".join(stem[: ask.start()].split()), ask["target"], options


def plan(context: Context, target_name: str, links: list[Link]) -> list[PlanStep]:
    """The steps from the context's days to the asked day, through today unless a day on the way
    is already known."""
    steps = list(context.steps)
    known = {normalize_name(s.name): s for s in steps}
    chain = [Link("today", Offset(1, "day", +1), "today")] + links  # the first entry stands for today itself
    start = next((i for i in range(len(chain) - 1, -1, -1) if normalize_name(chain[i].name) in known), None)
    if start is None:
        if context.to_today is None:
            raise QuestionError("the question does not say how today follows from its date")
        steps.append(_linked(context.to_today, known))
        known["today"] = steps[-1]
        start = 0
    for link in chain[start + 1:]:
        steps.append(_linked(link, known))
        known[normalize_name(link.name)] = steps[-1]
    if normalize_name(steps[-1].name) != normalize_name(target_name):
        raise QuestionError(f"the asked day {target_name!r} is not the last day found")
    return steps


@lru_cache(maxsize=4096)
def solve(question: str) -> Solution:
    """The plan and options of a question; QuestionError if it cannot be read."""
    context_text, target_phrase, options_text = split_question(question)
    target_name, links = read_target(target_phrase)
    try:
        context = read_context(context_text)
        steps = plan(context, target_name, links)
        today = _today(context, steps)
    except QuestionError:
        raise
    except ValueError as e:  # a date pushed out of the calendar
        raise QuestionError(str(e)) from None
    options = []
    for m in _OPTION.finditer(options_text):
        day = read_mdy(m["date"])
        if day is not None:
            options.append((m["letter"], day))
    return Solution(tuple(steps), tuple(options), today)


def _today(context: Context, steps: list[PlanStep]) -> date:
    """Today's date, from the plan or, when the plan stops before today, from the context's link."""
    found = {normalize_name(s.name): s for s in steps}
    if "today" in found:
        return found["today"].date
    if context.to_today is None:
        raise QuestionError("the question does not say how today follows from its date")
    return _linked(context.to_today, found).date


# =================================================================== rationale steps


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def render_step(step: PlanStep, source_date: date | None = None) -> str:
    if step.is_given:
        return f"{capitalized(step.name)} is {step.expression}, which is {fmt(step.date)}."
    return f"{capitalized(step.name)} is {step.offset.text} {step.source}, {fmt(source_date)}, which is {fmt(step.date)}."


def render_option(day: date, letter: str) -> str:
    return f"{fmt(day)} is option ({letter})."


def render_final(letter: str) -> str:
    return f"So the answer is ({letter})."


_D = r"\d{1,2}/\d{1,2}/\d{4}"
_OFFSET_STEP = re.compile(rf"^(?P<name>.+?) is (?P<n>\d+) (?P<unit>{UNIT}) (?P<dir>before|after) (?P<source>.+?), "
                          rf"(?P<src>{_D}), which is (?P<date>{_D})\.?$")
_GIVEN_STEP = re.compile(rf"^(?P<name>.+?) is (?P<expr>.+), which is (?P<date>{_D})\.?$")
_OPTION_STEP = re.compile(rf"^(?P<date>{_D}) is option \((?P<letter>[A-Z])\)\.?$")
_FINAL = re.compile(r"answer is:?\s*\(([A-Z])\)")


@dataclass(frozen=True)
class Written:
    """One numbered step of an attempt, as written (dates as text: they may be impossible)."""

    kind: str  # "given", "offset" or "option"
    name: str = ""
    date: str = ""
    expression: str = ""
    offset: Offset | None = None
    offset_text: str = ""
    source: str = ""
    source_date: str = ""
    letter: str = ""


def read_step(text: str) -> Written | None:
    text = text.strip()
    if m := _OPTION_STEP.match(text):
        return Written("option", date=m["date"], letter=m["letter"])
    if m := _OFFSET_STEP.match(text):
        offset = Offset(int(m["n"]), _unit(m["unit"]), +1 if m["dir"] == "after" else -1)
        return Written("offset", name=m["name"], date=m["date"], offset=offset, source=m["source"], source_date=m["src"],
                       offset_text=f"{m['n']} {m['unit']} {m['dir']}")
    if m := _GIVEN_STEP.match(text):
        return Written("given", name=m["name"], date=m["date"], expression=m["expr"])
    return None


def _offset_from(step: PlanStep) -> str:
    return f"{step.offset.text} {step.source}"


# =================================================================== the paper's free phrasing
# The reference's rationales were written by an LLM, one sentence a step, e.g.
#   (1) If today is the last day of the third quarter of 1999, then today's date is September 30, 1999.
#   (2) One week from today is October 7, 1999, that is 10/07/1999.
#   (Final response) So the answer is (B).
# A model fine-tuned on them writes the same way, so the checker reads such steps as *claims*: each
# date a step writes, with what the sentence says it is ("today's date", "One week from today",
# "that" = the date just before, "24 hours later from <date>"), or nothing when it names no day.


@dataclass(frozen=True)
class Said:
    """A date written in a step or a question; ``date`` is None when the words give no year ("Dec 2")."""

    text: str
    start: int
    end: int
    date: date | None
    month: int
    day: int

    def means(self, day: date) -> bool:
        return self.date == day if self.date else (self.month, self.day) == (day.month, day.day)

    def shown(self) -> str:
        return fmt(self.date) if self.date else f"{self.month:02d}/{self.day:02d}"


def scan_dates(text: str, day_first: bool = False) -> list[Said]:
    """Every date written in ``text``, in order: full dates in any form the questions use, and month
    and day without a year ("3/6", "Dec 1"). Impossible dates ("12/32/1959") are not dates."""
    found = []
    for pattern, reader in _DATE_FORMS:
        for m in pattern.finditer(text):
            day = _read_safely(reader, m, day_first)
            if day is not None:
                found.append(Said(m.group(0), m.start(), m.end(), day, day.month, day.day))
    for pattern, reader in _NO_YEAR_FORMS:
        for m in pattern.finditer(text):
            day = _read_safely(reader, m, 2000)  # a leap year, so that 2/29 is a month and day
            if day is not None:
                found.append(Said(m.group(0), m.start(), m.end(), None, day.month, day.day))
    found.sort(key=lambda s: (s.start, -s.end))  # earliest first, the longest on a tie
    out: list[Said] = []
    for said in found:
        if not out or said.start >= out[-1].end:
            out.append(said)
    return out


def _read_safely(reader, m: re.Match, arg) -> date | None:
    try:
        return reader(m, arg)
    except (ValueError, KeyError, IndexError):
        return None


# Words between two dates that make the second the same day as the first: "..., that is 10/07/1999".
_SAME_DAY = re.compile(r"^\s*,?\s*(?:that is|i\.e\.|is|was|is on|=)\s*,?\s*$", re.I)
# "<offset> later from / of / after / before <date> is <date>": the second date is that far from the first.
_RELATION = re.compile(r"\b(?:from|of|after|before|since)\s*$", re.I)
_RELATIVE_TO = re.compile(rf"(?P<off>{NUM} (?:{UNIT}|hours?)(?: and {NUM} {UNIT})?)(?: (?P<dir>later|earlier|ago))? "
                          rf"(?P<rel>from|of|after|before)\s*$", re.I)
# Where a clause starts: punctuation and the connectives the rationales use.
_CLAUSE_START = re.compile(r"[,;:()]|\.\s|\b(?:if|then|so|but|since|because|hence|thus|therefore|consequently|when)\b"
                           r"|\band\b(?=\s+(?:today|tomorrow|yesterday|the date)\b)", re.I)
_COPULA = re.compile(r"^(?P<subject>.*?)\s*\b(?:is|was|will be|would be|should be|must be|becomes)\b"
                     r"(?:\s+(?:really|actually|in fact|now|then))*(?:\s+on)?\s*$", re.I | re.S)
_FILLER = re.compile(r"^(?:\s|and\b|the date of\b|the date\b|the day\b)+", re.I)


@dataclass(frozen=True)
class Claim:
    """One date a step writes and what the step says it is."""

    said: Said
    same_as: Said | None = None  # "that is <date>": the same day as this earlier date
    day_words: str = ""  # the day it is said to be ("today", "one week from today"), "" when none
    relative: tuple[Offset, ...] = ()  # "24 hours later from <base>": offsets from ``same_as``


def read_claims(text: str, question_dates: dict[str, date]) -> list[Claim]:
    """The claims of one step. A date written as in the question is read the question's way (a UK
    question's 05/03/1994 is March 5)."""
    said = [_as_in_question(s, question_dates) for s in scan_dates(text)]
    ours = _claims_of_our_step(text, said)
    if ours is not None:
        return ours
    claims = []
    for i, s in enumerate(said):
        before = said[i - 1] if i else None
        between = text[before.end if before else 0:s.start]
        if before is not None and _SAME_DAY.match(between):
            if not _RELATION.search(text[:before.start]):
                claims.append(Claim(s, same_as=before))
                continue
            # "<words> from <date> is <date>": some way from that date; unread words say nothing
            head = _RELATIVE_TO.search(text[:before.start])
            offsets = _offsets_of(head) if head else ()
            claims.append(Claim(s, same_as=before, relative=offsets) if offsets else Claim(s))
        else:
            claims.append(Claim(s, day_words=_subject(between)))
    return claims


def _claims_of_our_step(text: str, said: list[Said]) -> list[Claim] | None:
    """A step in our phrasing among the paper's ("Today is 1 day after yesterday, 03/03/2017, which
    is 03/04/2017."): its grammar says what each date is. None for any other step."""
    written = read_step(text)
    if written is None or written.kind == "option" or not said or said[-1].text != written.date:
        return None
    *before, found = said
    name = _subject(f"{written.name} is")
    if written.kind == "given":
        claims = [Claim(s) for s in before]
        if len(before) == 1:  # "... is March 3, 2017, which is 03/03/2017": the same day
            claims.append(Claim(found, same_as=before[0]))
        return claims + [Claim(found, day_words=name)]
    if not before or before[-1].text != written.source_date:
        return None
    *earlier, source = before
    return [Claim(s) for s in earlier] + [Claim(source, day_words=_subject(f"{written.source} is")),
                                          Claim(found, same_as=source, relative=(written.offset,)),
                                          Claim(found, day_words=name)]


def _as_in_question(said: Said, question_dates: dict[str, date]) -> Said:
    day = question_dates.get(said.text)
    return Said(said.text, said.start, said.end, day, day.month, day.day) if day else said


def _offsets_of(m: re.Match) -> tuple[Offset, ...]:
    sign = -1 if (m["dir"] or "").lower() in ("earlier", "ago") or m["rel"].lower() == "before" else +1
    try:
        return tuple(_offset_part(part, sign) for part in m["off"].split(" and "))
    except QuestionError:  # hours that are no whole number of days
        return ()


def _subject(between: str) -> str:
    """What a clause says its date is: "then today's date is" -> "today"; "" when it names no day."""
    starts = list(_CLAUSE_START.finditer(between))
    clause = between[starts[-1].end():] if starts else between
    m = _COPULA.match(clause.strip())
    if m is None:
        return ""
    subject = _FILLER.sub("", m["subject"]).strip()
    subject = re.sub(r"['\u2019]s(?: date)?$", "", subject)  # "today's date" -> "today"
    return re.sub(r"\b(later|earlier) from (?:today|now)$", r"\1", subject, flags=re.I).strip()


def day_from_today(words: str, today: date) -> date | None:
    """The date of a day named relative to today ("yesterday", "10 days ago", "one week from
    today"); None when the words name no such day."""
    try:
        name, links = read_target(words)
    except QuestionError:
        return None
    days = {"today": today}
    try:
        for link in links:
            days[normalize_name(link.name)] = link.offset.apply(days[normalize_name(link.source)])
    except (ValueError, KeyError):
        return None
    return days.get(normalize_name(name))


_QUESTION_OFFSET = re.compile(rf"\b(?P<n>{NUM}) (?P<unit>{UNIT}) (?:later|after|ago|before|earlier|away)\b", re.I)


@dataclass(frozen=True)
class Facts:
    """What a step may rightly say about a question: today, the plan's days (and the months or
    years a month or year offset passes), the dates the question writes, and dates one of the
    question's offsets away from today or a written date."""

    today: date
    known: frozenset[date]
    question_dates: dict[str, date]  # the question's date words -> the date the solver reads

    @classmethod
    def of(cls, question: str, solution: Solution) -> Facts:
        context, _, _ = split_question(question)
        day_first = re.search(r"day before the month", context, re.I) is not None
        year = _YEAR.search(context)
        written = {}
        for said in scan_dates(context, day_first):
            day = said.date or (_make_date(int(year.group(1)), said.month, said.day) if year else None)
            if day is not None:
                written[said.text] = day
        known = {solution.today, *written.values()}
        found = {}
        for step in solution.steps:
            known.add(step.date)
            if not step.is_given:
                known.update(_days_passed(step, found[normalize_name(step.source)]))
            found[normalize_name(step.name)] = step.date
        # "Jane's appointment will be 3 days later": today or a written date that far either way
        anchors = [solution.today, *written.values()]
        for m in _QUESTION_OFFSET.finditer(context):
            for sign in (+1, -1):
                offset = Offset(number(m["n"]), _unit(m["unit"]), sign)
                known.update(d for d in map(_shifted(offset), anchors) if d is not None)
        return cls(solution.today, frozenset(known), written)


def _days_passed(step: PlanStep, source_day: date) -> list[date]:
    """The monthly or yearly days a month or year offset passes on its way ("the first five
    visits are 10/16/2009, 11/16/2009, ...")."""
    if step.is_given or step.offset.unit not in UNIT_MONTHS or step.offset.amount > 120:
        return []
    shifts = (_shifted(Offset(k, step.offset.unit, step.offset.sign)) for k in range(1, step.offset.amount))
    return [d for d in (shift(source_day) for shift in shifts) if d is not None]


def _shifted(offset: Offset):
    def shift(day: date) -> date | None:
        try:
            return offset.apply(day)
        except ValueError:
            return None
    return shift


def _unreal_date(text: str, question: str) -> str | None:
    """A MM/DD/YYYY that no calendar has ("02/29/2015"), unless the question wrote it (a question may
    say that today cannot be 12/32/1959)."""
    for m in re.finditer(rf"\b{_D}\b", text):
        if read_mdy(m.group(0)) is None and m.group(0) not in question:
            return m.group(0)
    return None


def judge(claim: Claim, facts: Facts) -> str | None:
    """Why a claim is wrong, or None. A date said to be the one before must be it; a date said to
    be a day relative to today ("today's date", "One week from today") must be that day's; a date
    the step names no day for must be one the question leads to (``Facts.known``)."""
    said = claim.said
    if claim.same_as is not None:
        base = claim.same_as
        if claim.relative:
            if base.date is None:
                return None  # "3 days later from Dec 2": no year to count from
            right = _apply_all(claim.relative, base.date)
            if right is not None and not said.means(right):
                return f"{' and '.join(o.text for o in claim.relative)} {base.text} is {fmt(right)}, not {said.text}"
            return None
        if base.date is not None and said.date is not None:
            same = base.date == said.date
        else:
            same = (base.month, base.day) == (said.month, said.day)
        return None if same else f"{base.text} is {base.shown()}, not {said.text}"
    right = day_from_today(claim.day_words, facts.today) if claim.day_words else None
    if right is not None:
        return None if said.means(right) else f"{claim.day_words} is {fmt(right)}, not {said.text}"
    if any(said.means(day) for day in facts.known):
        return None
    return f"{said.text} is none of the days the question leads to (today is {fmt(facts.today)})"


def first_wrong_step(numbered: list[Step], question: str, solution: Solution) -> Feedback | None:
    """The error in the first step that writes a date no calendar has, a claim ``judge`` rejects,
    or an option that is not the date found before it; None when no step does. Unreadable when
    no step writes a date at all (not a date rationale)."""
    facts = Facts.of(question, solution)
    wrote_a_date, previous = False, ""
    for step in numbered:
        unreal = _unreal_date(step.text, question)
        if unreal is not None:
            return Feedback.error(step.id, unreal, f"{unreal} is not a real date")
        claims = read_claims(step.text, facts.question_dates)
        wrote_a_date = wrote_a_date or bool(claims)
        for claim in claims:
            reason = judge(claim, facts)
            if reason is not None:
                return Feedback.error(step.id, claim.said.text, reason)
        wrong_option = _named_option_error(step.text, claims, solution) or _option_step_error(step.text, previous)
        if wrong_option is not None:
            return Feedback.error(step.id, *wrong_option)
        previous = step.text
    if not wrote_a_date:
        raise Unreadable("no step writes a date")
    return None


def _apply_all(offsets: tuple[Offset, ...], day: date) -> date | None:
    try:
        for offset in offsets:
            day = offset.apply(day)
    except ValueError:
        return None
    return day


def _option_follows(option: Written, before: str, answer: str) -> bool:
    """Our option step names the answer's letter and the date the step before it found."""
    previous = read_step(before)
    if f"({option.letter})" != answer or (previous is not None and previous.kind == "option"):
        return False
    found = [said.date for said in scan_dates(before)]
    return read_mdy(option.date) is not None and found[-1:] == [read_mdy(option.date)]


def _option_step_error(text: str, previous: str) -> tuple[str, str] | None:
    """(segment, reason) when our option step ("10/21/1953 is option (D).") names a date the step
    before it did not end with: the date the option stands for was never found (SPEC 6)."""
    option = read_step(text)
    if option is None or option.kind != "option":
        return None
    found = [said.date for said in scan_dates(previous) if said.date is not None]
    if read_mdy(option.date) is not None and found[-1:] == [read_mdy(option.date)]:
        return None
    if not found:
        return option.date, f"no step before it finds {option.date}"
    return option.date, f"the step before does not find {option.date}: it ended with {fmt(found[-1])}"


_NAMED_OPTION = re.compile(r"\boption \((?P<letter>[A-Z])\)")


def _named_option_error(text: str, claims: list[Claim], solution: Solution) -> tuple[str, str] | None:
    """(segment, reason) when a step names an option ("..., which is option (E).") that is not the
    date written just before it."""
    for m in _NAMED_OPTION.finditer(text):
        letter = m["letter"]
        actual = solution.option_date(letter)
        if actual is None:
            return m.group(0), f"there is no option ({letter})"
        before = [c.said for c in claims if c.said.end <= m.start()]
        if before and not before[-1].means(actual):
            right = solution.letter_of(before[-1].date) if before[-1].date else None
            also = f"; {before[-1].text} is option ({right})" if right else ""
            return m.group(0), f"option ({letter}) is {fmt(actual)}{also}"
    return None


# =================================================================== the generator

NAMES = [("Jane", "her"), ("John", "his"), ("Mary", "her"), ("Tom", "his"), ("Alice", "her"), ("Bob", "his")]
EVENTS = ["quit {p} job", "moved to a new city", "started {p} diet", "bought {p} car", "adopted a cat"]
THINGS = ["deadline", "exam", "concert", "party", "interview"]
# special days of a year: (words, date) makers
SPECIAL_DAYS = [
    lambda y, r: (f"Christmas Eve of {y}", date(y, 12, 24)),
    lambda y, r: (f"Christmas Day of {y}", date(y, 12, 25)),
    lambda y, r: (f"New Year's Eve of {y}", date(y, 12, 31)),
    lambda y, r: (f"New Year's Day of {y}", date(y, 1, 1)),
    lambda y, r: (f"Independence Day of {y}", date(y, 7, 4)),
    lambda y, r: (f"Halloween of {y}", date(y, 10, 31)),
    lambda y, r: (f"Valentine's Day of {y}", date(y, 2, 14)),
    lambda y, r: (f"Thanksgiving of {y}", nth_weekday(y, 11, 3, "fourth")),
    lambda y, r: (f"the first day of {y}", date(y, 1, 1)),
    lambda y, r: (f"the last day of {y}", date(y, 12, 31)),
    lambda y, r: (f"the last day of February in {y}", date(y, 2, last_day_of_month(y, 2))),
    lambda y, r: _month_edge(y, r),
    lambda y, r: _weekday_words(y, r),
]


def _month_edge(year: int, rng: random.Random) -> tuple[str, date]:
    month, which = rng.randint(1, 12), rng.choice(["first", "last"])
    day = 1 if which == "first" else last_day_of_month(year, month)
    return f"the {which} day of {MONTHS[month - 1]} {year}", date(year, month, day)


def _weekday_words(year: int, rng: random.Random) -> tuple[str, date]:
    weekday, which = rng.randrange(7), rng.choice(["first", "first", "second", "last"])
    if rng.random() < 0.5:
        month = rng.randint(1, 12)
        return f"the {which} {WEEKDAYS[weekday]} of {MONTHS[month - 1]} {year}", nth_weekday(year, month, weekday, which)
    return f"the {which} {WEEKDAYS[weekday]} of {year}", nth_weekday_of_year(year, weekday, which)


WRITTEN_FORMS = [  # ways to write a given date
    lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    lambda d: fmt(d),
    lambda d: f"{d.month}/{d.day}/{d.year}",
    lambda d: f"{d.year}-{d.month:02d}-{d.day:02d}",
    lambda d: f"the {suffixed(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    lambda d: f"{MONTHS[d.month - 1]} {suffixed(d.day)}, {d.year}",
]

ONE_HOP = ["yesterday", "tomorrow", "the day before yesterday", "the day after tomorrow", "{n} days ago",
           "{n} days from today", "{n} days later", "one week ago", "one week from today", "one week ago from today",
           "{w} weeks ago", "{w} weeks from today", "a month ago", "one month from today", "{m} months ago",
           "one year ago", "one year from today", "one year ago from today", "{y} years ago", "24 hours later"]
TWO_HOPS = ["a month and a day ago", "a week and a day ago", "one year and one month from today",
            "one month and one day from today", "one week from yesterday", "one week from tomorrow",
            "{n} days before yesterday", "one month after tomorrow", "one year and {n} days ago"]
RELATIVE_ANCHORS = [  # (template, the day its date is)
    ("Yesterday was {e}.", "yesterday"),
    ("Tomorrow is {e}.", "tomorrow"),
    ("The day before yesterday was {e}.", "the day before yesterday"),
    ("The day after tomorrow is {e}.", "the day after tomorrow"),
    ("{who} booked a flight for tomorrow, {e}.", "tomorrow"),
    ("Yesterday, {e}, {who} ate two pizzas.", "yesterday"),
    ("It was {e} one week ago.", "the date one week ago"),
]
TODAY_ANCHORS = ["Today is {e}.", "It is {e} today.", "Today, {e}, is a day that {who} will never forget."]


@dataclass
class Draft:
    """A question being made: its context and today's date."""

    context: str
    today: date
    given_day: str = "today"  # the day the context dates, for "What is the date yesterday?" after "Yesterday was ..."


# =================================================================== the task


class DateUnderstanding(Task):
    name = "date_understanding"
    info = ""

    def __init__(self, min_year: int = 1900, max_year: int = 2030, min_options: int = 5, max_options: int = 6,
                 special_day_rate: float = 0.4):
        if not 1 < min_year <= max_year < 9900:
            raise ValueError("need 1 < min_year <= max_year < 9900")
        if not 2 <= min_options <= max_options <= 10:  # about 10 plausible wrong dates are made
            raise ValueError("need 2 <= min_options <= max_options <= 10")
        if not 0.0 <= special_day_rate <= 1.0:
            raise ValueError("need 0 <= special_day_rate <= 1")
        self.min_year, self.max_year = min_year, max_year
        self.min_options, self.max_options = min_options, max_options
        self.special_day_rate = special_day_rate

    # ------------------------------------------------------------------ questions
    def cells(self) -> list[Cell]:
        return [Cell(f"s{k}", k in SEEN_STEPS, {"steps": k}) for k in range(1, MAX_STEPS_CELL + 1)]

    def cell_of(self, question: str) -> Cell:
        """The cell of the question's plan length. A file loader skips (and counts) a question this
        raises QuestionError (a ValueError) on, with the reason: the solver cannot read it.

        A question whose options do not hold the solver's date is still placed: BIG-Bench Hard has
        such items (their targets are wrong) and its file must load whole; ``gold_answer`` and
        ``check`` report those questions as unanswerable."""
        solution = solve(question)
        if not solution.options:
            raise QuestionError("the question has no options (A) MM/DD/YYYY ...")
        return self.cell(f"s{min(len(solution.steps), MAX_STEPS_CELL)}")

    def normalize_question(self, text: str) -> str:
        """Whitespace collapsed and options one a line ("Options: (A) ... (B) ..." on one line too)."""
        stem, found, options = text.partition("Options:")
        stem = " ".join(stem.split())
        if not found:
            return stem
        pairs = re.findall(r"\(([A-Z])\)\s*(.*?)\s*(?=\([A-Z]\)|$)", " ".join(options.split()))
        return stem + "\nOptions:\n" + "\n".join(f"({letter}) {value}" for letter, value in pairs)

    def _random_date(self, rng: random.Random) -> date:
        start, end = date(self.min_year, 1, 1), date(self.max_year, 12, 31)
        return start + timedelta(days=rng.randrange((end - start).days + 1))

    def _date_words(self, rng: random.Random, year: int | None = None) -> tuple[str, date]:
        """Words for a date: a special day of a year, or a random date in one of the written forms."""
        if rng.random() < self.special_day_rate:
            return rng.choice(SPECIAL_DAYS)(year or rng.randint(self.min_year, self.max_year), rng)
        day = self._random_date(rng)
        if year is not None:
            day = date(year, day.month, min(day.day, last_day_of_month(year, day.month)))
        return rng.choice(WRITTEN_FORMS)(day), day

    def _draft(self, rng: random.Random, steps_to_today: int) -> Draft:
        """A context whose today takes ``steps_to_today`` steps: 1 when it dates today itself, 2 when
        it dates another day (yesterday, a birth date, a deadline) that today follows from."""
        who, pronoun = rng.choice(NAMES)
        if steps_to_today == 1:
            words, day = self._date_words(rng)
            return Draft(rng.choice(TODAY_ANCHORS).format(e=words, who=who), day)
        kind = rng.choice(["relative", "relative", "born", "married", "passed", "away"])
        if kind == "relative":
            template, day_name = rng.choice(RELATIVE_ANCHORS)
            words, day = self._date_words(rng)
            to_today = DAY_WORDS.get(day_name) or Offset(1, "week", +1)  # or: "It was ... one week ago."
            return Draft(template.format(e=words, who=who), to_today.apply(day), day_name)
        if kind in ("born", "married"):
            years = rng.randint(1, 60)
            words, day = self._date_words(rng, rng.randint(self.min_year, max(self.min_year, self.max_year - years)))
            today = Offset(years, "year", +1).apply(day)
            if kind == "born":
                return Draft(f"{who} was born on {words}. Today is {pronoun} {years}-year-old birthday.", today)
            partner = rng.choice([n for n, _ in NAMES if n != who])
            return Draft(f"{who} and {partner} married on {words}. It is their {years}-year anniversary today.", today)
        words, day = self._date_words(rng)
        n = rng.randint(2, 400)
        if kind == "passed":
            event = rng.choice(EVENTS).format(p=pronoun)
            return Draft(f"{who} {event} on {words}. {n} days have passed since then.", day + timedelta(days=n))
        return Draft(f"The {rng.choice(THINGS)} is {words}, which is {n} days away from now.", day - timedelta(days=n))

    @staticmethod
    def _target_words(rng: random.Random, hops: int) -> str:
        if hops == 0:
            return "today"
        template = rng.choice(ONE_HOP if hops == 1 else TWO_HOPS)
        return template.format(n=rng.randint(2, 30), w=rng.randint(2, 5), m=rng.randint(2, 11), y=rng.randint(2, 20))

    def _options(self, answer: date, near: list[date], rng: random.Random) -> list[date]:
        """The answer and plausible wrong dates: a day, week, month or year off, month and day
        swapped, another year, a date found on the way."""
        wrong = set()
        for offset in (Offset(1, "day", 1), Offset(1, "day", -1), Offset(1, "month", 1), Offset(1, "month", -1),
                       Offset(1, "year", 1), Offset(1, "year", -1), Offset(1, "week", 1), Offset(1, "week", -1),
                       Offset(rng.randint(2, 90), "year", rng.choice([-1, 1]))):
            try:
                wrong.add(offset.apply(answer))
            except ValueError:
                pass
        swapped = _make_date(answer.year, answer.day, answer.month) if answer.day <= 12 else None
        wrong.update(d for d in [swapped, *near] if d is not None)
        wrong.discard(answer)
        count = rng.randint(self.min_options, self.max_options)
        chosen = rng.sample(sorted(wrong), min(count - 1, len(wrong))) + [answer]
        rng.shuffle(chosen)
        return chosen

    def sample(self, cell: Cell, rng: random.Random) -> Example:
        k = int(cell.params["steps"])
        for _ in range(200):
            draft, target = self._draft_for(k, rng)
            stem = f"{draft.context} What is the date {target} in MM/DD/YYYY?"
            try:
                solution = solve(stem)
            except QuestionError:
                continue  # a date pushed out of the calendar
            if min(len(solution.steps), MAX_STEPS_CELL) != k:
                continue  # the target reuses a day of the context: another cell
            answer = solution.answer_date
            options = self._options(answer, [draft.today, *(s.date for s in solution.steps[:-1])], rng)
            letters = [chr(ord("A") + i) for i in range(len(options))]
            question = stem + "\nOptions:\n" + "\n".join(f"({x}) {fmt(d)}" for x, d in zip(letters, options))
            letter = letters[options.index(answer)]
            return Example(question, f"({letter})", cell.name, cell.seen, self.gold_rationale(question),
                           meta={"today": fmt(draft.today)})
        raise RuntimeError(f"cell {cell.name}: no question of {k} steps found")

    def _draft_for(self, k: int, rng: random.Random) -> tuple[Draft, str]:
        """A context and an asked day that make ``k`` reasoning steps (or a near miss, checked later)."""
        if rng.random() < 0.25 and k in (1, 2):
            # the asked day is the given day itself ("Yesterday was ... What is the date yesterday?"),
            # or one hop from it ("... one week from yesterday")
            draft = self._draft(rng, 2)
            while draft.given_day not in ("yesterday", "tomorrow"):
                draft = self._draft(rng, 2)
            return draft, draft.given_day if k == 1 else f"one week from {draft.given_day}"
        choices = [a for a in (1, 2) if 0 <= k - a <= 2]
        steps_to_today = rng.choice(choices) if k < MAX_STEPS_CELL else 2
        draft = self._draft(rng, steps_to_today)
        return draft, self._target_words(rng, k - steps_to_today)

    # ------------------------------------------------------------------ text
    def _solution(self, question: str) -> tuple[Solution, str]:
        solution = solve(question)
        letter = solution.letter_of(solution.answer_date)
        if letter is None:
            raise QuestionError(f"no single option is {fmt(solution.answer_date)}")
        return solution, letter

    def gold_answer(self, question: str) -> str:
        return f"({self._solution(question)[1]})"

    def gold_rationale(self, question: str) -> str:
        """Our phrasing (the generator's): one step per day of the plan, the option step, the final
        response; joined by newlines with none at the end, as the reference's rationales (SPEC 9)."""
        solution, letter = self._solution(question)
        dates = {}
        lines = []
        for i, step in enumerate(solution.steps, start=1):
            source_date = dates.get(normalize_name(step.source)) if step.source else None
            lines.append(f"({i}) {render_step(step, source_date)}")
            dates[normalize_name(step.name)] = step.date
        lines.append(f"({len(solution.steps) + 1}) {render_option(solution.answer_date, letter)}")
        lines.append(f"({FINAL_STEP}) {render_final(letter)}")
        return "\n".join(lines)

    def normalize_answer(self, answer: str) -> str:
        """"(A)", "A" (the paper's files), "a", "(A) 10/21/1953" -> "(A)"; anything else (a bare date)
        is kept as is."""
        text = str(answer).strip()
        m = re.fullmatch(r"\(?([A-Za-z])\)?\.?", text) or re.match(r"\(([A-Z])\)", text)
        return f"({m.group(1).upper()})" if m else text

    def parse_answer(self, attempt: str) -> str | None:
        line = final_response(attempt) if isinstance(attempt, str) else None
        m = _FINAL.search(line) if line else None
        return f"({m.group(1)})" if m else None

    def is_consistent(self, attempt: str, answer: str, question: str | None = None) -> bool:
        """SPEC 6: the final response gives ``answer`` and the second-to-last line holds its date.

        Our option step ("03/05/2017 is option (A).") names the letter, and its date must be the
        one the step before found. The paper's phrasing names no letter there, so its line must
        write a full date, and, when the question is given, the chosen option's date."""
        steps = split_steps(attempt) if isinstance(attempt, str) else None
        answer = self.normalize_answer(answer)
        if not steps or len(steps) < 2 or steps[-1].id != FINAL_STEP or self.parse_answer(attempt) != answer:
            return False
        line = steps[-2].text
        option = read_step(line)
        if option is not None and option.kind == "option":
            return len(steps) >= 3 and _option_follows(option, steps[-3].text, answer)
        written = [said.date for said in scan_dates(line) if said.date is not None]
        if not written:
            return False
        if question is None:
            return True
        try:
            chosen = solve(question).option_date(answer.strip("()"))
        except QuestionError:
            return False
        return chosen in written

    # ------------------------------------------------------------------ checking
    def find_error(self, question: str, attempt: str) -> Feedback:
        """Our phrasing (every step read by ``read_step``, with an option step) is checked step by
        step against the plan; any other phrasing (the paper's) claim by claim (``_check_free``)."""
        try:
            solution, letter = self._solution(question)
        except QuestionError as e:
            raise Unreadable(f"cannot read the question ({e})") from None
        numbered, _ = numbered_steps(attempt)
        written = [read_step(step.text) for step in numbered]
        if all(written) and any(w.kind == "option" for w in written):
            return self._check(solution, numbered, written, attempt)
        return self._check_free(question, solution, letter, numbered, attempt)

    def _check(self, solution: Solution, numbered: list[Step], written_steps: list[Written], attempt: str) -> Feedback:
        plan_steps = solution.steps
        found: dict[str, tuple[date, str]] = {}  # day name -> (date as written, step id)
        chosen = None
        for i, (step, written) in enumerate(zip(numbered, written_steps)):
            if i < len(plan_steps):
                feedback = self._check_day(step.id, step.text, written, plan_steps[i], found)
            elif i == len(plan_steps):
                feedback = self._check_option(step.id, step.text, written, solution, found)
                chosen = (written.letter, step.id)
            else:
                feedback = Feedback.error(step.id, step.text, f"the option was already chosen in step ({chosen[1]})")
            if feedback is not None:
                return feedback
        if chosen is None:
            return Feedback.unparsable("no step names the option before the final response")
        letter = self.parse_answer(attempt)
        if letter is None:
            return Feedback.unparsable("the final response gives no option letter")
        if letter != f"({chosen[0]})":
            return Feedback.error(FINAL_STEP, letter, f"step ({chosen[1]}) chose option ({chosen[0]}), not {letter}")
        return Feedback.correct()

    @staticmethod
    def _check_day(step_id: str, text: str, written: Written, expected: PlanStep,
                   found: dict[str, tuple[date, str]]) -> Feedback | None:
        """One reasoning step against the plan's step; records the date it found."""
        target = expected.name
        how = f"the question gives it as {expected.expression}" if expected.is_given else f"it is {_offset_from(expected)}"
        if written.kind == "option":
            return Feedback.error(step_id, text, f"{target} is not found yet, and the question asks for a later day")
        if normalize_name(written.name) != normalize_name(target):
            return Feedback.error(step_id, written.name, f"the next day to find is {target}: {how}")
        if expected.is_given and written.kind != "given":
            return Feedback.error(step_id, f"{written.offset_text} {written.source}", f"the question gives {target} as {expected.expression}")
        if not expected.is_given and written.kind != "offset":
            return Feedback.error(step_id, written.expression, f"the question does not give {target} directly: {how}")
        day = read_mdy(written.date)
        if day is None:
            return Feedback.error(step_id, f"which is {written.date}", f"{written.date} is not a real date")
        if expected.is_given:
            if normalize_name(written.expression) != normalize_name(expected.expression):
                return Feedback.error(step_id, written.expression, f"the question gives {target} as {expected.expression}")
            if day != expected.date:
                return Feedback.error(step_id, f"which is {written.date}",
                                      f"{expected.expression} is {fmt(expected.date)}, not {written.date}")
        else:
            if written.offset.canonical() != expected.offset.canonical():
                return Feedback.error(step_id, written.offset_text, f"{target} is {_offset_from(expected)}")
            if normalize_name(written.source) != normalize_name(expected.source):
                return Feedback.error(step_id, written.source, f"{target} is {_offset_from(expected)}")
            known_date, known_step = found[normalize_name(expected.source)]
            source_day = read_mdy(written.source_date)
            if source_day != known_date:
                return Feedback.error(step_id, f"{written.source}, {written.source_date}",
                                      f"{expected.source} is {fmt(known_date)} (step ({known_step})), not {written.source_date}")
            try:
                right = written.offset.apply(source_day)
            except ValueError:
                return Feedback.error(step_id, f"which is {written.date}", f"{written.offset_text} {written.source_date} is outside the calendar")
            if day != right:
                return Feedback.error(step_id, f"which is {written.date}",
                                      f"{written.offset_text} {written.source_date} is {fmt(right)}, not {written.date}")
        found[normalize_name(target)] = (day, step_id)
        return None

    @staticmethod
    def _check_option(step_id: str, text: str, written: Written, solution: Solution,
                      found: dict[str, tuple[date, str]]) -> Feedback | None:
        target = solution.target.name
        if written.kind != "option":
            return Feedback.error(step_id, text, f"{target} was already found; this step should name its option")
        known_date, known_step = found[normalize_name(target)]
        if read_mdy(written.date) != known_date:
            return Feedback.error(step_id, written.date, f"step ({known_step}) found {target} to be {fmt(known_date)}")
        right = solution.letter_of(known_date)
        if right is None:
            return Feedback.error(step_id, text, f"{fmt(known_date)} is not one of the options")
        if written.letter != right:
            actual = solution.option_date(written.letter)
            why = f"option ({written.letter}) is {fmt(actual)}" if actual else f"there is no option ({written.letter})"
            return Feedback.error(step_id, f"option ({written.letter})", f"{why}; {fmt(known_date)} is option ({right})")
        return None

    def _check_free(self, question: str, solution: Solution, letter: str, numbered: list[Step], attempt: str) -> Feedback:
        """The paper's phrasing: the first step with a wrong claim (``first_wrong_step``); then the
        last step must write the asked day's date (SPEC 6) and the final response its letter."""
        wrong = first_wrong_step(numbered, question, solution)
        if wrong is not None:
            return wrong
        last = numbered[-1]
        last_dates = scan_dates(last.text)
        if solution.answer_date not in [said.date for said in last_dates]:
            segment = last_dates[-1].text if last_dates else last.text
            return Feedback.error(last.id, segment, f"the question asks for {solution.target.name}, "
                                                    f"{fmt(solution.answer_date)}, and this last step does not give it")
        chosen = self.parse_answer(attempt)
        if chosen is None:
            return Feedback.unparsable("the final response gives no option letter")
        if chosen != f"({letter})":
            actual = solution.option_date(chosen[1])
            why = f"option {chosen} is {fmt(actual)}" if actual else f"there is no option {chosen}"
            return Feedback.error(FINAL_STEP, chosen, f"{why}; {fmt(solution.answer_date)}, found in step ({last.id}), "
                                                      f"is option ({letter})")
        return Feedback.correct()

    # ------------------------------------------------------------------ wrong attempts
    def inject_error(self, question: str, rng: random.Random, tries: int = 20) -> str | None:
        """The gold rationale with one mistake a solver makes, carried forward to a wrong answer:
        a given day dated wrongly, an offset misread, an earlier date copied wrongly, an offset
        computed wrongly, the wrong option letter, or a final letter that is not the option's."""
        try:
            solution, answer_letter = self._solution(question)
        except QuestionError:
            return None
        gold = self.gold_rationale(question)
        for _ in range(tries):
            attempt = _Mistake(solution, rng).attempt()
            if attempt is None:
                continue
            fb = self.check(question, attempt)
            wrong = not self.answers_match(self.parse_answer(attempt), f"({answer_letter})")
            if fb.is_error and fb.step == _first_difference(attempt, gold) and wrong:
                return attempt
        return None


def _first_difference(attempt: str, gold: str) -> str | None:
    for a, g in zip(split_steps(attempt) or [], split_steps(gold) or []):
        if a.text != g.text:
            return a.id
    return None


_DATE_SLIPS = [Offset(1, "day", 1), Offset(1, "day", -1), Offset(1, "month", 1), Offset(1, "month", -1),
               Offset(1, "year", 1), Offset(1, "year", -1), Offset(10, "day", 1), Offset(10, "day", -1)]


def _slip(day: date, rng: random.Random) -> date | None:
    """A date a careless solver writes instead: a day, month, year or ten days off, or month and day swapped."""
    if rng.random() < 0.2 and day.day <= 12 and day.day != day.month:
        return date(day.year, day.day, day.month)
    try:
        return rng.choice(_DATE_SLIPS).apply(day)
    except ValueError:
        return None


def _misread(offset: Offset, rng: random.Random) -> Offset:
    """An offset read wrongly: one more or less, or the other direction."""
    kind = rng.choice(["more", "less", "flip"])
    if kind == "flip" or (kind == "less" and offset.amount == 1):
        return Offset(offset.amount, offset.unit, -offset.sign)
    return Offset(offset.amount + (1 if kind == "more" else -1), offset.unit, offset.sign)


class _Mistake:
    """One wrong attempt for a solved question: a mistake at one step, the rest computed from it."""

    def __init__(self, solution: Solution, rng: random.Random):
        self.solution, self.rng = solution, rng

    def attempt(self) -> str | None:
        steps = list(self.solution.steps)
        kind = self.rng.choices(["date", "offset", "source", "option", "final"], weights=[40, 20, 15, 15, 10])[0]
        offsets = [i for i, s in enumerate(steps) if not s.is_given]
        if kind in ("offset", "source") and offsets:
            at = self.rng.choice(offsets)
        elif kind in ("date", "offset", "source"):
            kind, at = "date", self.rng.randrange(len(steps))
        else:
            at = None
        try:
            lines, dates = self._days(steps, kind, at)
        except ValueError:
            return None
        if lines is None:
            return None
        last = dates[normalize_name(steps[-1].name)]
        letter = self.solution.letter_of(last)
        right = self.solution.letter_of(self.solution.answer_date)
        letters = [x for x, _ in self.solution.options if x != right]
        if kind == "option" or letter is None:
            letter = self.rng.choice(letters)  # the date is not an option (or the mistake is the letter)
        lines.append(render_option(last, letter))
        final = self.rng.choice(letters) if kind == "final" else letter
        body = "".join(f"({i}) {text}\n" for i, text in enumerate(lines, start=1))
        return body + f"({FINAL_STEP}) {render_final(final)}\n"

    def _days(self, steps: list[PlanStep], kind: str, at: int | None) -> tuple[list[str] | None, dict[str, date]]:
        """Step texts with the mistake at step ``at``; every later day computed from the dates as written."""
        dates: dict[str, date] = {}
        lines = []
        for i, step in enumerate(steps):
            if step.is_given:
                day = step.date
                if i == at:
                    day = _slip(day, self.rng)
                    if day is None:
                        return None, dates
                lines.append(render_step(PlanStep(step.name, day, step.expression)))
            else:
                source_day, offset = dates[normalize_name(step.source)], step.offset
                if i == at and kind == "source":
                    source_day = _slip(source_day, self.rng)
                elif i == at and kind == "offset":
                    offset = _misread(offset, self.rng)
                if source_day is None:
                    return None, dates
                day = offset.apply(source_day)
                if i == at and kind == "date":
                    day = _slip(day, self.rng)
                    if day is None:
                        return None, dates
                lines.append(render_step(PlanStep(step.name, day, offset=offset, source=step.source), source_day))
            dates[normalize_name(step.name)] = day
        return lines, dates
