"""Facts a reader can point at in a text: emails, links, prices, dates, phones, names, counts, ratings.

Extraction answers fill a field from these when its name, format or description says what it holds
("email", "price_usd", "order_date", ...), so ``{"email": ...}`` gets the address the text gives
instead of words that happen to follow an "@".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL_RE = re.compile(r"\bhttps?://[^\s<>\"')\]]+|\bwww\.[^\s<>\"')\]]+", re.IGNORECASE)
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_PRICE_RE = re.compile(
    r"(?P<sym>[$€£¥₹])\s?(?P<a>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"|(?P<b>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?P<code>USD|EUR|GBP|JPY|INR|dollars?|euros?|pounds?)\b",
    re.IGNORECASE,
)
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTH_RE = "|".join(m[:3] + (m[3:] and f"(?:{m[3:]})?") for m in _MONTHS)
_DATE_RE = re.compile(
    r"\b(?P<iso>\d{4}-\d{2}-\d{2})\b"
    rf"|\b(?P<mname>{_MONTH_RE})\.?\s+(?P<mday>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<myear>\d{{4}})\b"
    rf"|\b(?P<dday>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<dname>{_MONTH_RE})\.?,?\s+(?P<dyear>\d{{4}})\b"
    r"|\b(?P<us_m>\d{1,2})/(?P<us_d>\d{1,2})/(?P<us_y>\d{4})\b",
    re.IGNORECASE,
)
_PHONE_RE = re.compile(
    r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?!\w)"
)
_RATING_RE = re.compile(
    r"\b(?P<n>\d+(?:\.\d)?)\s*(?:/|out of)\s*(?P<of>5|10|100)\b|\b(?P<stars>[1-5])[\s-]?stars?\b",
    re.IGNORECASE,
)
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "a dozen": 12, "dozen": 12, "a couple of": 2, "a pair of": 2,
}  # fmt: skip
_COUNT_RE = re.compile(
    r"(?<![\d.,$€£¥₹])\b(?P<n>\d+|"
    + "|".join(_NUMBER_WORDS)
    + r")\s+(?!(?:stars?|out|of|percent|%|days?|weeks?|months?|years?|"
    r"hours?|minutes?|dollars?|euros?|pounds?)\b)(?P<what>[a-z][a-z-]+(?:\s+[a-z][a-z-]+)?)",
    re.IGNORECASE,
)
_NOT_THINGS_TEXT = """for the a an and or of to in on at by with from is was are were it times"""
_NOT_THINGS = frozenset(_NOT_THINGS_TEXT.split())
_PRODUCT_RE = re.compile(
    r"\b(?:bought|ordered|purchased|received|paid [^ ]+ for|for)\s+(?:the|a|an|my|this|these|some)\s+"
    r"([a-z][a-z-]+(?:\s+[a-z][a-z-]+)?)",
    re.IGNORECASE,
)
_NAME_CUE_RE = re.compile(
    r"(?:my name is|i am|i'm|this is|name:|signed,?|regards,?|thanks,?|cheers,?|from:|contact:|-|—)\s*"
    r"(?P<name>[A-Z][a-z]+(?:\s+[A-Z][a-z]+){0,2})"
)
_CAPITALISED_PAIR_RE = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+\s+[A-Z][a-z]+)\b")
_NOT_NAMES_TEXT = """The This That These Those It I We You He She They My Our Your Very Great Good Bad Thanks Thank
Please Dear Hi Hello Best Kind Regards Customer Support Service Team"""
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())


@dataclass(frozen=True, slots=True)
class Price:
    amount: float
    currency: str
    text: str  # as written, e.g. "$49.99"


def _month_number(name: str) -> int:
    return _MONTHS.index(next(m for m in _MONTHS if m.startswith(name.lower()[:3]))) + 1


class Facts:
    """Lazily extracted facts of one text."""

    def __init__(self, text: str) -> None:
        self.text = text

    @cached_property
    def emails(self) -> list[str]:
        return _EMAIL_RE.findall(self.text) if "@" in self.text else []

    @cached_property
    def urls(self) -> list[str]:
        return [u.rstrip(".,;:!?") for u in _URL_RE.findall(self.text)]

    @cached_property
    def prices(self) -> list[Price]:
        found = []
        for m in _PRICE_RE.finditer(self.text):
            number = (m.group("a") or m.group("b")).replace(",", "")
            if m.group("sym"):
                currency = _CURRENCY_SYMBOLS[m.group("sym")]
            else:
                code = m.group("code").lower()
                currency = {"dollar": "USD", "euro": "EUR", "pound": "GBP"}.get(
                    code.rstrip("s"), code.upper()
                )
            found.append(Price(float(number), currency, m.group(0)))
        return found

    @cached_property
    def dates(self) -> list[str]:
        """ISO dates (YYYY-MM-DD) in order of appearance."""
        found = []
        for m in _DATE_RE.finditer(self.text):
            if m.group("iso"):
                year, month, day = (int(x) for x in m.group("iso").split("-"))
            elif m.group("mname"):
                year, month, day = (
                    int(m.group("myear")),
                    _month_number(m.group("mname")),
                    int(m.group("mday")),
                )
            elif m.group("dname"):
                year, month, day = (
                    int(m.group("dyear")),
                    _month_number(m.group("dname")),
                    int(m.group("dday")),
                )
            else:
                year, month, day = int(m.group("us_y")), int(m.group("us_m")), int(m.group("us_d"))
            if 1 <= month <= 12 and 1 <= day <= 31:
                found.append(f"{year:04d}-{month:02d}-{day:02d}")
        return found

    @cached_property
    def phones(self) -> list[str]:
        return [p.strip() for p in _PHONE_RE.findall(self.text) if sum(c.isdigit() for c in p) >= 7]

    @cached_property
    def names(self) -> list[str]:
        """Person names: after a cue ("my name is", "Thanks, ..."), then capitalised word pairs."""
        found = [m.group("name") for m in _NAME_CUE_RE.finditer(self.text)]
        found += _CAPITALISED_PAIR_RE.findall(self.text)
        return [n for n in dict.fromkeys(found) if n.split()[0] not in _NOT_NAMES]

    @cached_property
    def ratings(self) -> list[tuple[float, int]]:
        """(value, out of) pairs: "4/5", "8 out of 10", "3 stars"."""
        found = []
        for m in _RATING_RE.finditer(self.text):
            if m.group("stars"):
                found.append((float(m.group("stars")), 5))
            else:
                found.append((float(m.group("n")), int(m.group("of"))))
        return found

    @cached_property
    def counts(self) -> list[tuple[int, str]]:
        """(quantity, thing) pairs: "3 mugs", "two kettles"."""
        found = []
        for m in _COUNT_RE.finditer(self.text):
            n = m.group("n").lower()
            value = int(n) if n.isdigit() else _NUMBER_WORDS[n]
            words = m.group("what").lower().split()
            if len(words) > 1 and words[1] in _NOT_THINGS:
                words = words[:1]
            what = " ".join(words)
            if words[0] not in _NOT_THINGS and value < 10_000:
                found.append((value, what))
        return found

    @cached_property
    def products(self) -> list[str]:
        """What was bought: "3 ceramic mugs", "paid $20 for the kettle", "ordered a blender"."""
        found = [what for _, what in self.counts]
        for m in _PRODUCT_RE.finditer(self.text):
            words = m.group(1).lower().split()
            if len(words) > 1 and words[1] in _NOT_THINGS:
                words = words[:1]
            if words[0] not in _NOT_THINGS:
                found.append(" ".join(words))
        return list(dict.fromkeys(found))

    @cached_property
    def numbers(self) -> list[float]:
        return [
            float(x.replace(",", "")) for x in re.findall(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?", self.text)
        ]

    def first(self, kind: str) -> str | None:
        """The first value of a fact kind, as a person would write it; None when the text has none."""
        if kind == "email":
            return self.emails[0] if self.emails else None
        if kind == "url":
            return self.urls[0] if self.urls else None
        if kind == "phone":
            return self.phones[0] if self.phones else None
        if kind == "currency":
            return self.prices[0].currency if self.prices else None
        if kind == "price":
            return self.prices[0].text if self.prices else None
        if kind == "date":
            return self.dates[0] if self.dates else None
        if kind == "name":
            return self.names[0] if self.names else None
        if kind == "count":
            return f"{self.counts[0][0]} {self.counts[0][1]}" if self.counts else None
        if kind == "rating":
            return f"{self.ratings[0][0]:g}/{self.ratings[0][1]}" if self.ratings else None
        if kind == "product":
            return self.products[0] if self.products else None
        return None
