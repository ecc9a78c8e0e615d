"""Deterministic JSON values that satisfy a structured-outputs JSON schema.

A schema is compiled once into a tree of small filler closures (cached by its JSON bytes, since a
batch sends the same schema tens of thousands of times); filling then costs a few microseconds.
Property names steer the content so answers read sensibly: sentiment enums get the sentiment of
the input text, ``confidence`` gets its confidence, ``reason`` its reason, other strings words
taken from the text.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from functools import cached_property

import orjson

from .extraction import Facts
from .sentiment import Sentiment, analyze, is_opinion_word
from .tasks import label_cues

_MASK = (1 << 64) - 1
_DEEP = 4  # past this depth, recursive schemas take their shortest branch
_TOO_DEEP = 64
_CACHE_LIMIT = 4096

_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")
_STOPWORD_TEXT = """a about after again all also am an and any are as at be because been before being but by can
    could did do does doing for from had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not now of off on once only or other our ours out over
    own same she should so some such than that the their theirs them then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours review text please following"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_NOT_TOPICS_TEXT = """january february march april may june july august september october november december jan feb
    mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday posted wrote
    written stars star rated rating reviewed recommend would really also"""
_NOT_TOPICS = frozenset(_NOT_TOPICS_TEXT.split())
_SENTIMENT_LABELS = ("positive", "negative", "neutral")


class SchemaError(ValueError):
    """The schema uses something this engine cannot satisfy; reported to the caller as a 400."""


def _mix(x: int) -> int:
    """splitmix64: a cheap, well-spread deterministic hash of an int."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class FillContext:
    """What a filler may draw on: the analysed text and the request's seed. Everything is lazy."""

    def __init__(self, text: str, seed: int, evaluation: tuple[float, str] | None = None) -> None:
        self.text = text
        self.seed = seed
        # (quality in [0, 1], why) of an answer under evaluation; scores and verdicts follow it
        self.grade, self.grade_reason = evaluation if evaluation is not None else (None, "")

    @cached_property
    def facts(self) -> Facts:
        return Facts(self.text)

    def rand(self, salt: int) -> int:
        return _mix(self.seed ^ salt)

    @cached_property
    def sentiment(self) -> Sentiment:
        return analyze(self.text)

    @cached_property
    def words(self) -> list[str]:
        return _WORD_RE.findall(self.text)

    @cached_property
    def stems(self) -> frozenset[str]:
        """The first five letters of each lower-cased word: "refunds" and "refunded" meet."""
        return frozenset(w.lower()[:5] for w in self.words if len(w) > 2)

    @cached_property
    def topics(self) -> list[str]:
        """Content words, most frequent first, then by first appearance; opinion words last."""
        counts: dict[str, int] = {}
        skip = _NOT_TOPICS
        if self.facts.names:  # people and dates are facts, not topics
            skip = skip.union(w.lower() for name in self.facts.names for w in name.split())
        for word in self.words:
            lower = word.lower()
            if len(lower) > 2 and lower not in STOPWORDS and lower not in skip and not lower.isdigit():
                counts[lower] = counts.get(lower, 0) + 1
        order = {w: i for i, w in enumerate(counts)}
        return sorted(counts, key=lambda w: (is_opinion_word(w), -counts[w], order[w]))

    def topic(self, index: int) -> str:
        topics = self.topics
        return topics[index % len(topics)] if topics else "general"

    def phrase(self, salt: int) -> str:
        """Three to six consecutive words of the text."""
        words = self.words
        if not words:
            return "no details given"
        r = self.rand(salt)
        size = 3 + r % 4
        start = (r >> 8) % max(1, len(words) - size + 1)
        return " ".join(words[start : start + size])

    @cached_property
    def sentence(self) -> str:
        """The first sentence of the text, at most 24 words: a one-line summary."""
        text = " ".join(self.text.split())
        if not text:
            return "The text is empty."
        first = _SENTENCE_END_RE.split(text, maxsplit=1)[0]
        words = first.split()
        sentence = " ".join(words[:24]).rstrip(",;:")
        if len(words) > 24 or sentence[-1] not in ".!?":
            sentence += "."
        return sentence[:1].upper() + sentence[1:]

    @property
    def summary(self) -> str:
        """The answer to a bare text with no instruction: its first sentence, labelled."""
        return (
            f"Summary: {self.sentence}" if self.text.strip() else "Nothing to summarize: the input is empty."
        )

    @property
    def title(self) -> str:
        topics = self.topics[:3]
        return " ".join(t.capitalize() for t in topics) if topics else "Untitled"


# A filler takes (context, depth, salt, index-in-parent-array) and returns a JSON value.
Filler = Callable[[FillContext, int, int, int], object]


def _has(name: str, keys: tuple[str, ...]) -> bool:
    return any(k in name for k in keys)


def _norm(name: str) -> str:
    return name.lower().replace("-", "_")


# ---------------------------------------------------------------------------------------------
# strings


_REASON_KEYS = ("reason", "rationale", "explanation", "justification", "explain", "why")
_SUMMARY_KEYS = ("summary", "description", "gist", "abstract", "overview", "answer", "response")
_LABEL_KEYS = ("sentiment", "label", "polarity", "tone")
_TOPIC_KEYS = ("keyword", "topic", "tag", "theme", "aspect", "entity", "entities")
_TITLE_KEYS = ("title", "headline", "subject")
_LANGUAGE_KEYS = ("language", "lang", "locale")

_FORMATS: dict[str, Callable[[FillContext, int], str]] = {
    "date-time": lambda ctx, salt: "2025-01-01T00:00:00Z",
    "date": lambda ctx, salt: "2025-01-01",
    "time": lambda ctx, salt: "12:00:00Z",
    "duration": lambda ctx, salt: "P1D",
    "email": lambda ctx, salt: "user@example.com",
    "hostname": lambda ctx, salt: "example.com",
    "ipv4": lambda ctx, salt: "192.0.2.1",
    "ipv6": lambda ctx, salt: "2001:db8::1",
    "uri": lambda ctx, salt: "https://example.com/",
    "uuid": lambda ctx, salt: _uuid(ctx.rand(salt), ctx.rand(salt + 1)),
}


def _uuid(a: int, b: int) -> str:
    h = f"{a:016x}{b:016x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


_NAME_TOKEN_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# Field kinds a name (or, failing that, a description) names, first match wins.
_FIELD_KINDS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (kind, frozenset(words.split()))
    for kind, words in (
        ("email", "email emails mail"),
        ("url", "url urls link links website homepage uri"),
        ("phone", "phone telephone tel mobile cell"),
        ("currency", "currency"),
        ("price", "price prices amount cost costs total paid usd eur gbp fee spend spent subtotal"),
        ("date", "date dates day when"),
        ("count", "count quantity qty num units"),
        ("rating", "rating stars"),
        ("product", "product item model sku"),
        ("name", "name author reviewer customer sender person contact signer buyer"),
    )
)


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _NAME_TOKEN_RE.findall(text)]


def field_kind(name: str, description: object = None, fmt: object = None) -> str | None:
    """What a field holds, from its format, then its name's words, then its description's."""
    if fmt == "email":
        return "email"
    if fmt in ("uri", "url"):
        return "url"
    if fmt in ("date", "date-time"):
        return "date"
    for words in (_tokens(name), _tokens(description) if isinstance(description, str) else []):
        if words:
            for kind, keys in _FIELD_KINDS:
                if keys.intersection(words):
                    return kind
            if "number" in words and "of" in words:  # number_of_items
                return "count"
    return None


def _extracted_string(kind: str, ctx: FillContext) -> str | None:
    if kind == "count":  # a quantity field holds the number alone
        return str(ctx.facts.counts[0][0]) if ctx.facts.counts else None
    if kind == "product" and not ctx.facts.products:
        return ctx.topic(0) if ctx.topics else None
    return ctx.facts.first(kind)


_MISSING_BY_FORMAT = {"email": "unknown@example.com", "uri": "https://example.com/", "date": "2025-01-01"}


def _extraction_source(
    kind: str, fmt: object, nullable: bool
) -> Callable[[FillContext, int, int], str | None]:
    """The text's value for a field kind; None (if the field allows null) or "N/A" when absent."""
    missing = None if nullable else _MISSING_BY_FORMAT.get(fmt, "N/A") if isinstance(fmt, str) else "N/A"
    date_time = fmt == "date-time"

    def source(ctx: FillContext, salt: int, index: int) -> str | None:
        value = _extracted_string(kind, ctx)
        if value is None:
            return "2025-01-01T00:00:00Z" if date_time and not nullable else missing
        return f"{value}T00:00:00Z" if date_time else value

    return source


def _string_source(
    name: str, fmt: object, description: object = None, nullable: bool = False
) -> Callable[[FillContext, int, int], str | None]:
    n = _norm(name)
    if _has(n, _REASON_KEYS):
        return lambda ctx, salt, index: ctx.grade_reason if ctx.grade is not None else ctx.sentiment.reason
    if _has(n, _SUMMARY_KEYS) and fmt is None:
        return lambda ctx, salt, index: ctx.sentence
    if _has(n, _LABEL_KEYS):
        return lambda ctx, salt, index: ctx.sentiment.label
    if _has(n, _TITLE_KEYS) and fmt is None:  # "email_subject", "title_name": a title, not a fact
        return lambda ctx, salt, index: ctx.title
    kind = field_kind(name, description, fmt)
    if kind is not None:
        return _extraction_source(kind, fmt, nullable)
    if isinstance(fmt, str) and fmt in _FORMATS:
        by_format = _FORMATS[fmt]
        return lambda ctx, salt, index: by_format(ctx, salt)
    if _has(n, _TOPIC_KEYS):
        return lambda ctx, salt, index: ctx.topic(index)
    if _has(n, _TITLE_KEYS):
        return lambda ctx, salt, index: ctx.title
    if _has(n, _LANGUAGE_KEYS):
        return lambda ctx, salt, index: "en"
    return lambda ctx, salt, index: ctx.phrase(salt)


def _fit_length(value: str, min_len: int, max_len: int | None, ctx: FillContext) -> str:
    if len(value) < min_len:
        filler = " ".join(ctx.words) or "text"
        while len(value) < min_len:
            value = f"{value} {filler}" if value else filler
    if max_len is not None and len(value) > max_len:
        value = value[:max_len]
        for sep in ("; ", " "):  # prefer cutting between clauses, then between words
            cut = value.rfind(sep)
            if cut >= max(min_len, max_len // 2) and len(short := value[:cut].rstrip(" ,;:")) >= min_len:
                return short
        trimmed = value.rstrip(" ,;:")
        if len(trimmed) >= min_len:
            value = trimmed
    return value


def _compile_string(schema: dict, name: str, nullable: bool = False) -> Filler:
    source = _string_source(name, schema.get("format"), schema.get("description"), nullable)
    min_len = _int_keyword(schema, "minLength") or 0
    max_len = _int_keyword(schema, "maxLength")
    if max_len is not None and max_len < min_len:
        raise SchemaError(f"maxLength is smaller than minLength for '{name or 'root'}'")
    if not min_len and max_len is None:
        return lambda ctx, depth, salt, index: source(ctx, salt, index)

    def fill(ctx: FillContext, depth: int, salt: int, index: int) -> str | None:
        value = source(ctx, salt, index)
        return None if value is None else _fit_length(value, min_len, max_len, ctx)

    return fill


# ---------------------------------------------------------------------------------------------
# numbers and booleans


_CONFIDENCE_KEYS = ("confidence", "probability", "certainty", "likelihood", "prob")
_RATING_KEYS = ("rating", "stars", "score", "polarity", "sentiment")
_GRADE_KEYS = ("grade", "quality", "relevance", "faithfulness", "helpfulness", "accuracy", "correctness")


def _int_keyword(schema: dict, key: str) -> int | None:
    value = schema.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError(f"'{key}' must be a number")
    return int(value)


def _bound(schema: dict, key: str) -> float | None:
    value = schema.get(key)
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, int | float):
        raise SchemaError(f"'{key}' must be a number")
    return value


def _extracted_number(
    kind: str | None, ctx: FillContext, low: float | None, high: float | None
) -> float | None:
    facts = ctx.facts
    if kind == "price" and facts.prices:
        return facts.prices[0].amount
    if kind == "count" and facts.counts:
        return facts.counts[0][0]
    if kind == "rating" and facts.ratings:
        value, out_of = facts.ratings[0]
        if high is not None and high != out_of:  # "4/5" into a 1-10 field
            a = low if low is not None else 0
            return a + value / out_of * (high - a)
        return value
    return None


def _compile_number(schema: dict, name: str, integer: bool, nullable: bool = False) -> Filler:
    lo, hi = _bound(schema, "minimum"), _bound(schema, "maximum")
    xlo, xhi = _bound(schema, "exclusiveMinimum"), _bound(schema, "exclusiveMaximum")
    step = _bound(schema, "multipleOf")
    if integer:  # fold exclusive bounds into inclusive integer ones
        if xlo is not None:
            lo = max(lo, math.floor(xlo) + 1) if lo is not None else math.floor(xlo) + 1
        if xhi is not None:
            hi = min(hi, math.ceil(xhi) - 1) if hi is not None else math.ceil(xhi) - 1
        xlo = xhi = None
        lo = math.ceil(lo) if lo is not None else None
        hi = math.floor(hi) if hi is not None else None
    low = max(v for v in (lo, xlo) if v is not None) if (lo, xlo) != (None, None) else None
    high = min(v for v in (hi, xhi) if v is not None) if (hi, xhi) != (None, None) else None
    if low is not None and high is not None and low > high:
        raise SchemaError(f"the bounds of '{name or 'root'}' admit no value")

    n = _norm(name)
    kind = field_kind(name, schema.get("description"))
    unit = (low is None or low >= 0) and (high is None or high <= 1)
    if kind in ("price", "count"):
        missing = None if nullable else 0

        def raw(ctx: FillContext, salt: int) -> float | None:
            value = _extracted_number(kind, ctx, low, high)
            return missing if value is None else value

    elif _has(n, _CONFIDENCE_KEYS) or ("score" in n and unit):
        a, b = (low if low is not None else 0), (high if high is not None else max(1, (low or 0) + 1))

        def raw(ctx: FillContext, salt: int) -> float | None:
            return a + (ctx.grade if ctx.grade is not None else ctx.sentiment.confidence) * (b - a)

    elif _has(n, _RATING_KEYS) or _has(n, _GRADE_KEYS) or kind == "rating":
        a = low if low is not None else (1 if integer else -1)
        b = high if high is not None else max(5 if integer else 1, a + 1)

        def raw(ctx: FillContext, salt: int) -> float | None:
            if ctx.grade is not None:
                return a + ctx.grade * (b - a)
            stated = _extracted_number("rating", ctx, a, b)
            return stated if stated is not None else a + (ctx.sentiment.compound + 1) / 2 * (b - a)

    else:
        a = low if low is not None else (min(1, high) if high is not None else 1)
        b = high if high is not None else a + (9 if integer else 1)

        def raw(ctx: FillContext, salt: int) -> float | None:
            return a + (ctx.rand(salt) % 1000) / 999 * (b - a)

    def settle(value: float) -> float:
        value = round(value) if integer else round(value, 2)
        if step:
            value = round(value / step) * step
            if integer:
                value = int(value)
            if low is not None and value < low:
                value += step * math.ceil((low - value) / step)
            if high is not None and value > high:
                value -= step * math.ceil((value - high) / step)
        if lo is not None and value < lo:
            value = lo
        if hi is not None and value > hi:
            value = hi
        if xlo is not None and value <= xlo:
            value = (xlo + high) / 2 if high is not None else xlo + 1
        if xhi is not None and value >= xhi:
            value = (low + xhi) / 2 if low is not None else xhi - 1
        return int(value) if integer else float(value)

    def fill(ctx: FillContext, depth: int, salt: int, index: int) -> float | None:
        value = raw(ctx, salt)
        return None if value is None else settle(value)

    return fill


_FLAG_FILLER_TEXT = """is has have was were does did do mentions mention mentioned contains contain includes include
wants want requests request asks ask needs need requires require would will can should any about
the a of"""
_FLAG_FILLER = frozenset(_FLAG_FILLER_TEXT.split())
_GOOD_FLAGS_TEXT = """correct pass passed passes accurate faithful relevant valid acceptable helpful"""
_GOOD_FLAGS = frozenset(_GOOD_FLAGS_TEXT.split())


def _compile_boolean(name: str) -> Filler:
    """Sentiment flags follow the sentiment, verdict flags the grade, others whether the text
    mentions what the name says ("mentions_shipping", "wants_refund")."""
    n = _norm(name)
    for label in (*_SENTIMENT_LABELS, "mixed"):
        if label in n:
            if label == "mixed":
                return lambda ctx, depth, salt, index: ctx.sentiment.is_mixed
            return lambda ctx, depth, salt, index, label=label: ctx.sentiment.label == label
    words = [w for w in _tokens(name) if w not in _FLAG_FILLER]
    if _GOOD_FLAGS.intersection(words):
        return lambda ctx, depth, salt, index: (
            ctx.grade >= 0.5 if ctx.grade is not None else ctx.sentiment.compound >= 0
        )
    if "recommend" in words or "recommended" in words or "satisfied" in words:
        return lambda ctx, depth, salt, index: ctx.sentiment.label == "positive"
    if "complaint" in words or "angry" in words or "escalate" in words:
        return lambda ctx, depth, salt, index: ctx.sentiment.label == "negative"
    stems = frozenset(w[:5] for w in words if len(w) > 2)
    if not stems:
        return lambda ctx, depth, salt, index: False
    return lambda ctx, depth, salt, index: not stems.isdisjoint(ctx.stems)


# ---------------------------------------------------------------------------------------------
# enums


def _sentiment_enum_pick(members: list) -> Callable[[Sentiment], object] | None:
    """For enums of sentiment labels (any case), a picker from a Sentiment; else None."""
    lowered = {m.lower(): m for m in members if isinstance(m, str)}
    if sum(label in lowered for label in _SENTIMENT_LABELS) < 2:
        return None

    def pick(s: Sentiment) -> object:
        if s.is_mixed and "mixed" in lowered:
            return lowered["mixed"]
        label = s.label
        if label != "neutral" and abs(s.compound) >= 0.75 and f"very {label}" in lowered:
            return lowered[f"very {label}"]
        if label in lowered:
            return lowered[label]
        if "mixed" in lowered and label == "neutral":
            return lowered["mixed"]
        fallback = "positive" if s.compound >= 0 else "negative"
        return lowered.get(fallback) or lowered.get("neutral") or members[0]

    return pick


def _compile_enum(members: object, name: str) -> Filler:
    if not isinstance(members, list) or not members:
        raise SchemaError(f"'enum' of '{name or 'root'}' must be a non-empty array")
    pick = _sentiment_enum_pick(members)
    if pick is not None:
        return lambda ctx, depth, salt, index: pick(ctx.sentiment)
    count = len(members)
    verdicts = [m for m in members if isinstance(m, str) and m.lower() in _GOOD_FLAGS]
    others = [m for m in members if m not in verdicts]
    named = [(m, label_cues(m)) for m in members if isinstance(m, str)]

    def fill(ctx: FillContext, depth: int, salt: int, index: int) -> object:
        if ctx.grade is not None and verdicts:
            return verdicts[0] if ctx.grade >= 0.5 or not others else others[0]
        best, hits = None, 0
        for member, cues in named:  # the member the text points at most
            if (n := len(cues & ctx.stems)) > hits:
                best, hits = member, n
        if best is not None:
            return best
        fallback = [
            m for m in members if isinstance(m, str) and m.lower() in ("other", "unknown", "none", "n/a")
        ]
        return fallback[0] if fallback else members[ctx.rand(salt) % count]

    return fill


# ---------------------------------------------------------------------------------------------
# containers, combinators and references


class _Compiler:
    def __init__(self, root: dict) -> None:
        self.root = root
        self.refs: dict[str, Filler] = {}

    def ref(self, pointer: object, name: str) -> Filler:
        if not isinstance(pointer, str) or not pointer.startswith("#"):
            raise SchemaError(f"unsupported $ref {pointer!r}: only local references ('#/...') are allowed")
        key = f"{pointer}\0{name}"
        if key not in self.refs:
            self.refs[key] = _unresolved  # placeholder breaks cycles while compiling
            self.refs[key] = self.compile(self._resolve(pointer), name)
        refs = self.refs
        return lambda ctx, depth, salt, index: refs[key](ctx, depth, salt, index)

    def _resolve(self, pointer: str) -> object:
        node: object = self.root
        for part in pointer[1:].split("/")[1:] if pointer != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {pointer!r} does not resolve")
        return node

    def compile(self, schema: object, name: str = "", nullable: bool = False) -> Filler:
        """``nullable``: the field may be null, so facts absent from the text become null."""
        if schema is True or schema == {}:
            return _string_source_filler(name)
        if not isinstance(schema, dict):
            raise SchemaError(f"schema for '{name or 'root'}' must be an object")
        if "$ref" in schema:
            return self.ref(schema["$ref"], name)
        if "const" in schema:
            const = schema["const"]
            return lambda ctx, depth, salt, index: const
        if "enum" in schema:
            return _compile_enum(schema["enum"], name)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._any_of(schema[key], name)
        if "allOf" in schema:
            return self._all_of(schema["allOf"], name)
        kind = schema.get("type")
        if isinstance(kind, list):
            return self._type_list(kind, name, schema)
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            return self._object(schema, name)
        if kind == "array":
            return self._array(schema, name)
        if kind == "string":
            return _compile_string(schema, name, nullable)
        if kind in ("number", "integer"):
            return _compile_number(schema, name, integer=kind == "integer", nullable=nullable)
        if kind == "boolean":
            return _compile_boolean(name)
        if kind == "null":
            return lambda ctx, depth, salt, index: None
        raise SchemaError(f"unsupported type {kind!r} for '{name or 'root'}'")

    def _object(self, schema: dict, name: str) -> Filler:
        properties = schema.get("properties") or {}
        if not isinstance(properties, dict):
            raise SchemaError(f"'properties' of '{name or 'root'}' must be an object")
        fields = [(key, self.compile(sub, key), zlib.crc32(key.encode())) for key, sub in properties.items()]
        required = schema.get("required")
        if isinstance(required, list) and schema.get("additionalProperties") is not False:
            # loose (non-strict) schemas may require names they never describe: any value will do
            fields += [
                (k, self.compile({}, k), zlib.crc32(k.encode())) for k in required if k not in properties
            ]

        def fill(ctx: FillContext, depth: int, salt: int, index: int) -> dict:
            if depth > _TOO_DEEP:
                raise SchemaError("the schema recurses without an optional branch to stop at")
            base = salt * 1_000_003
            return {key: f(ctx, depth + 1, (base + crc) & _MASK, 0) for key, f, crc in fields}

        return fill

    def _array(self, schema: dict, name: str) -> Filler:
        items = self.compile(schema.get("items", {}), name)
        lo = _int_keyword(schema, "minItems") or 0
        hi = _int_keyword(schema, "maxItems")
        if hi is not None and hi < lo:
            raise SchemaError(f"maxItems is smaller than minItems for '{name or 'root'}'")
        usual = max(lo, min(hi if hi is not None else 3, 3 if _has(_norm(name), _TOPIC_KEYS) else 2))

        def fill(ctx: FillContext, depth: int, salt: int, index: int) -> list:
            count = usual if depth <= _DEEP else lo
            base = salt * 7919
            return [items(ctx, depth + 1, (base + i) & _MASK, i) for i in range(count)]

        return fill

    def _any_of(self, branches: object, name: str) -> Filler:
        if not isinstance(branches, list) or not branches:
            raise SchemaError(f"'anyOf' of '{name or 'root'}' must be a non-empty array")
        nulls = [i for i, b in enumerate(branches) if isinstance(b, dict) and b.get("type") == "null"]
        compiled = [self.compile(b, name, nullable=bool(nulls)) for b in branches]
        others = [f for i, f in enumerate(compiled) if i not in nulls] or compiled
        first = others[0]
        shortest = compiled[nulls[0]] if nulls else first

        def fill(ctx: FillContext, depth: int, salt: int, index: int) -> object:
            return (first if depth <= _DEEP else shortest)(ctx, depth, salt, index)

        return fill

    def _all_of(self, parts: object, name: str) -> Filler:
        if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
            raise SchemaError(f"'allOf' of '{name or 'root'}' must be a non-empty array of schemas")
        merged: dict = {}
        for part in parts:
            props = {**merged.get("properties", {}), **part.get("properties", {})}
            merged.update(part)
            if props:
                merged["properties"] = props
        return self.compile(merged, name)

    def _type_list(self, kinds: list, name: str, schema: dict) -> Filler:
        real = [k for k in kinds if k != "null"]
        if not real:
            return lambda ctx, depth, salt, index: None
        main = self.compile({**schema, "type": real[0]}, name, nullable="null" in kinds)
        if "null" not in kinds:
            return main
        return lambda ctx, depth, salt, index: main(ctx, depth, salt, index) if depth <= _DEEP else None


def _unresolved(ctx: FillContext, depth: int, salt: int, index: int) -> object:
    raise SchemaError("reference used before it was compiled")


def _string_source_filler(name: str) -> Filler:
    source = _string_source(name, None)
    return lambda ctx, depth, salt, index: source(ctx, salt, index)


# ---------------------------------------------------------------------------------------------
# public entry points


_COMPILED: dict[bytes, Filler] = {}


def compile_schema(schema: object) -> Filler:
    """The filler for ``schema``, compiled once per distinct schema (keyed by its JSON bytes)."""
    try:
        key = orjson.dumps(schema)
    except TypeError as exc:
        raise SchemaError(f"schema is not JSON: {exc}") from exc
    filler = _COMPILED.get(key)
    if filler is None:
        filler = (
            _Compiler(schema).compile(schema) if isinstance(schema, dict) else _Compiler({}).compile(schema)
        )
        if len(_COMPILED) >= _CACHE_LIMIT:
            _COMPILED.clear()
        _COMPILED[key] = filler
    return filler


def fill_schema(schema: object, text: str, seed: int, evaluation: tuple[float, str] | None = None) -> object:
    """A JSON value valid against ``schema``, drawn from ``text``; same inputs, same value.

    ``evaluation`` ((quality in [0, 1], why) of a graded answer) drives score, verdict and reason
    fields. Raises SchemaError for schemas outside the structured-outputs subset.
    """
    ctx = FillContext(text, seed, evaluation)
    try:
        return compile_schema(schema)(ctx, 0, 0, 0)
    except RecursionError as exc:
        raise SchemaError("the schema recurses too deeply") from exc
