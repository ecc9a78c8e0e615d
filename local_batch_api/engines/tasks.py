"""What an instruction asks for: the task, the label set it names, a scale, a length limit.

Read once per distinct instruction (a batch repeats one system prompt tens of thousands of times),
so the answer of each request only costs the work on its own subject.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Words an instruction may use for each sentiment class, as the answer should spell them back.
SENTIMENT_SYNONYMS: dict[str, str] = {
    "positive": "positive",
    "pos": "positive",
    "good": "positive",
    "happy": "positive",
    "satisfied": "positive",
    "favorable": "positive",
    "favourable": "positive",
    "praise": "positive",
    "promoter": "positive",
    "negative": "negative",
    "neg": "negative",
    "bad": "negative",
    "unhappy": "negative",
    "dissatisfied": "negative",
    "unsatisfied": "negative",
    "unfavorable": "negative",
    "unfavourable": "negative",
    "complaint": "negative",
    "detractor": "negative",
    "neutral": "neutral",
    "neu": "neutral",
    "indifferent": "neutral",
    "passive": "neutral",
    "mixed": "mixed",
}
_SENTIMENT_WORD_RE = re.compile(r"\b(" + "|".join(SENTIMENT_SYNONYMS) + r")\b", re.IGNORECASE)
_SCALE_RE = re.compile(r"\b(\d{1,3})\s*(?:-|\u2013|to)\s*(\d{1,3})\b|\bout of (\d{1,3})\b")
_LIST_RE = re.compile(
    r"\(([^()]{3,120})\)|\b(?:as|into|one of|either|categories|labels|among)\b:?\s*([^.;\n?]{3,160})",
    re.IGNORECASE,
)
_LIST_SPLIT_RE = re.compile(r"\s*(?:,|/|\||\bor\b|\band\b)\s*", re.IGNORECASE)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10, "twenty": 20, "fifty": 50}
_WORD_LIMIT_RE = re.compile(
    r"\b(?:in|under|at most|no more than|max(?:imum)?(?: of)?|within|up to)\s+(\d+|"
    + "|".join(_NUMBER_WORDS)
    + r")\s+words\b",
    re.IGNORECASE,
)
_SENTENCE_LIMIT_RE = re.compile(r"\b(one|a single|1|two|2|three|3)[ -]sentences?\b", re.IGNORECASE)
_TERSE = (
    "only the",
    "just the",
    "one word",
    "single word",
    "nothing else",
    "only with",
    "label only",
    "only one of",
    "respond only",
    "answer only",
    "reply only",
    "output only",
    "return only",
    "no explanation",
    "without explanation",
)
_LANGUAGES = ("french", "spanish", "german", "italian", "portuguese", "dutch", "english")
_EVALUATE = ("evaluate", "grade", "assess", "judge", "correct", "accura", "faithful", "relevan", "helpful")
_SUMMARY = ("summar", "tl;dr", "tldr", "condense", "gist", "shorten", "key points", "main point")
_EXTRACT = ("extract", "pull out", "pull the", "parse", "find the", "list the", "identify the", "fill in")
_GENERATE = (
    "write",
    "ideas",
    "brainstorm",
    "generate",
    "draft",
    "compose",
    "create",
    "produce",
    "suggest",
    "come up with",
    "headline",
    "tagline",
    "slogan",
    "caption",
    "product description",
)
ENTITY_WORDS: dict[str, tuple[str, ...]] = {
    "email": ("email", "e-mail"),
    "phone": ("phone", "telephone", "mobile number"),
    "url": ("url", "link", "website"),
    "price": ("price", "amount", "cost", "total", "paid", "spent"),
    "date": ("date", "when"),
    "name": ("name", "person", "who"),
    "count": ("quantity", "how many", "number of items", "count"),
    "rating": ("rating", "stars"),
}


_TOPIC_RE = re.compile(
    r"\b(?:about|for|of|on|describing|promoting|announcing|introducing)\s+(?:an?\s+|the\s+|our\s+|my\s+)?(.+)$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Task:
    kind: str  # sentiment | classify | evaluate | summary | extract | generate | translate | question | none
    labels: tuple[str, ...] = ()  # as the instruction spells them
    scale: tuple[int, int] | None = None  # a numeric answer range ("1 to 5")
    terse: bool = False  # "answer with only the label"
    word_limit: int | None = None
    sentence_limit: int | None = None
    language: str | None = None  # target of a translation
    entities: tuple[str, ...] = ()  # what an extraction asks for
    topic: str = ""  # what a generation is about when no separate text is given


_VERDICT_PAIR_RE = re.compile(
    r"\b(yes|true|pass|correct|faithful|relevant)\s*(?:or|/)\s*(no|false|fail|incorrect|unfaithful|irrelevant)\b",
    re.IGNORECASE,
)


def _listed_labels(instruction: str) -> tuple[str, ...]:
    """The first short list the instruction names ("as billing, shipping or other")."""
    pair = _VERDICT_PAIR_RE.search(instruction)
    if pair:
        return (pair.group(1), pair.group(2))
    for m in _LIST_RE.finditer(instruction):
        items = [i.strip(" \"'`*:") for i in _LIST_SPLIT_RE.split(m.group(1) or m.group(2))]
        items = [i for i in items if i]
        if 2 <= len(items) <= 8 and all(len(i) <= 30 and len(i.split()) <= 3 for i in items):
            return tuple(items)
    return ()


def _sentiment_labels(instruction: str) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for m in _SENTIMENT_WORD_RE.finditer(instruction):
        canonical = SENTIMENT_SYNONYMS[m.group(1).lower()]
        seen.setdefault(canonical, m.group(1))
    return tuple(seen.values()) if len(seen) >= 2 else ()


def _scale(lower: str) -> tuple[int, int] | None:
    m = _SCALE_RE.search(lower)
    if m is None:
        return None
    if m.group(3):
        return (1, int(m.group(3)))
    low, high = int(m.group(1)), int(m.group(2))
    return (low, high) if low < high <= 100 else None


def _topic(instruction: str) -> str:
    """What a generation is about: the words after "about"/"for"/"of"/"on" in the request."""
    m = _TOPIC_RE.search(instruction.strip())
    return m.group(1).strip().rstrip(".!?") if m else ""


@functools.lru_cache(maxsize=1024)
def detect(instruction: str) -> Task:
    """The task ``instruction`` asks for; ``none`` when there is no instruction at all."""
    lower = instruction.lower()
    if not lower.strip():
        return Task("none")
    terse = any(t in lower for t in _TERSE)
    words = _WORD_LIMIT_RE.search(lower)
    word_limit = None
    if words:
        word_limit = int(words.group(1)) if words.group(1).isdigit() else _NUMBER_WORDS[words.group(1)]
    sentences = _SENTENCE_LIMIT_RE.search(lower)
    sentence_limit = None
    if sentences:
        first = sentences.group(1)
        sentence_limit = 1 if first in ("one", "a single", "1") else 2 if first in ("two", "2") else 3
    common = {"terse": terse, "word_limit": word_limit, "sentence_limit": sentence_limit}
    if "translat" in lower:
        language = next((lang for lang in _LANGUAGES if lang in lower), "french")
        return Task("translate", language=language, **common)
    sentiment_labels = _sentiment_labels(instruction)
    if "sentiment" in lower or "tone" in lower.split() or sentiment_labels:
        scale = None if sentiment_labels else _scale(lower)
        return Task("sentiment", labels=sentiment_labels, scale=scale, **common)
    if any(k in lower for k in _EVALUATE) or re.search(r"\b(?:rate|score)\b", lower):
        labels = _listed_labels(instruction) if not _scale(lower) else ()
        return Task("evaluate", labels=labels, scale=_scale(lower), **common)
    if any(k in lower for k in _SUMMARY):
        return Task("summary", **common)
    if any(k in lower for k in _EXTRACT) or re.match(
        r"\s*(?:what|who|when)\b.*\b(?:email|price|date|phone|name)\b", lower
    ):
        entities = tuple(kind for kind, keys in ENTITY_WORDS.items() if any(k in lower for k in keys))
        return Task("extract", entities=entities, **common)
    if any(k in lower for k in _GENERATE):
        return Task("generate", topic=_topic(instruction), **common)
    if re.search(r"\b(?:classify|categori[sz]e|label|tag|assign)\b", lower):
        return Task("classify", labels=_listed_labels(instruction), **common)
    if re.match(r"\s*(?:does|is|are|did|was|were|has|have)\b", lower):
        labels = _listed_labels(re.sub(r"\babout\b", "as", instruction))
        return Task("classify", labels=labels, **common) if labels else Task("question", **common)
    # Anything else ("You are a helpful assistant.", "Tell me about turtles."): no set task; the
    # request itself is the topic when no separate text comes with it.
    return Task("none", topic=_topic(instruction) or instruction.strip().rstrip(".!?"), **common)


# Words that point at common ticket and review categories without naming them.
_CATEGORY_HINTS: dict[str, frozenset[str]] = {
    key: frozenset(w[:5] for w in words.split())
    for key, words in {
        "billi": "charge charged invoice payment paid bill card refund overcharged subscription price",
        "shipp": "delivery delivered arrived package parcel courier tracking late shipped box",
        "deliv": "shipping arrived package parcel courier tracking late shipped box",
        "quali": "broke broken defective stopped cheap flimsy cracked faulty leaks damaged snapped ripped torn poor",
        "accou": "login password sign account locked email username",
        "retur": "return refund exchange send back",
        "techn": "error crash bug app website install update",
    }.items()
}


@functools.lru_cache(maxsize=1024)
def label_cues(label: str) -> frozenset[str]:
    """Five-letter stems of a category label's words and of words that usually point at it."""
    stems = {w[:5] for w in re.findall(r"[a-z0-9]+", label.lower()) if len(w) > 2}
    return frozenset(stems.union(*(_CATEGORY_HINTS.get(stem, ()) for stem in stems)))
