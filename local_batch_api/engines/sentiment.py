"""VADER sentiment with a label, a confidence and a reason a person can check.

VADER's own ``polarity_scores`` only returns aggregate scores, and it rebuilds a lower-cased
word list for every word it scores (about 55 us for a 200-character review). ``_score`` is a
faithful port of its rules on one pre-lowered list that also keeps the per-word valences the
reason needs; the unit tests check it gives VADER's exact scores.
"""

from __future__ import annotations

import functools
import math
import re
import string
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
    SentimentIntensityAnalyzer,
    normalize,
)

POSITIVE_THRESHOLD = 0.05
NEGATIVE_THRESHOLD = -0.05
_MAX_REASON_WORDS = 3

_ANALYZER = SentimentIntensityAnalyzer()


@dataclass(frozen=True, slots=True)
class Sentiment:
    label: str  # "positive" | "neutral" | "negative"
    compound: float  # VADER compound score in [-1, 1]
    confidence: float  # in [0, 1], two decimals
    reason: str  # e.g. "positive words: love, great"
    positive_words: tuple[str, ...]
    negative_words: tuple[str, ...]
    pos: float  # VADER's share of positive / negative / neutral wording
    neg: float
    neu: float

    @property
    def is_mixed(self) -> bool:
        """Both sides carry real weight and neither clearly wins."""
        return self.pos >= 0.1 and self.neg >= 0.1 and abs(self.compound) < 0.5


def _strip_emojis(text: str) -> str:
    """VADER's emoji-to-description pass; skipped for ASCII text, which cannot contain emojis."""
    if text.isascii():
        return text.strip()
    emojis = _ANALYZER.emojis
    out: list[str] = []
    prev_space = True
    for ch in text:
        description = emojis.get(ch)
        if description is not None:
            if not prev_space:
                out.append(" ")
            out.append(description)
            prev_space = False
        else:
            out.append(ch)
            prev_space = ch == " "
    return "".join(out).strip()


# Words that carry sentiment in product reviews but not in VADER's general-purpose lexicon.
REVIEW_LEXICON: dict[str, float] = {
    "refund": -1.2,
    "returning": -1.0,
    "returned": -1.0,
    "flimsy": -1.6,
    "dented": -1.3,
    "junk": -2.0,
    "unusable": -2.2,
    "overpriced": -1.5,
    "leaks": -1.4,
    "leaking": -1.4,
    "crashed": -1.5,
    "sturdy": 1.5,
    "durable": 1.5,
}
_LEXICON: dict[str, float] = {**_ANALYZER.lexicon, **REVIEW_LEXICON}
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_NEGATE = frozenset(NEGATE)
# Every word that can take part in a multi-word special case or booster; a window without one of
# them cannot match, so the idiom check (seven string joins) is skipped.
_IDIOM_WORDS = frozenset(w for key in (*SPECIAL_CASES, *BOOSTER_DICT) if " " in key for w in key.split())
_PUNCTUATION = string.punctuation


def _negated(word: str) -> bool:
    return word in _NEGATE or "n't" in word


def _special_idioms(valence: float, lows: list[str], i: int) -> float:
    """VADER's ``_special_idioms_check`` on a pre-lowered word list."""
    if _IDIOM_WORDS.isdisjoint(lows[i - 3 : i + 3]):
        return valence
    onezero = f"{lows[i - 1]} {lows[i]}"
    twoonezero = f"{lows[i - 2]} {lows[i - 1]} {lows[i]}"
    twoone = f"{lows[i - 2]} {lows[i - 1]}"
    threetwoone = f"{lows[i - 3]} {lows[i - 2]} {lows[i - 1]}"
    threetwo = f"{lows[i - 3]} {lows[i - 2]}"
    for seq in (onezero, twoonezero, twoone, threetwoone, threetwo):
        if seq in SPECIAL_CASES:
            valence = SPECIAL_CASES[seq]
            break
    if len(lows) - 1 > i:
        zeroone = f"{lows[i]} {lows[i + 1]}"
        if zeroone in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroone]
    if len(lows) - 1 > i + 1:
        zeroonetwo = f"{lows[i]} {lows[i + 1]} {lows[i + 2]}"
        if zeroonetwo in SPECIAL_CASES:
            valence = SPECIAL_CASES[zeroonetwo]
    for n_gram in (threetwoone, threetwo, twoone):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


def _boost(booster: float, word: str, valence: float, is_cap_diff: bool) -> float:
    """VADER's ``scalar_inc_dec`` for a word known to be a booster."""
    scalar = -booster if valence < 0 else booster
    if is_cap_diff and word.isupper():
        scalar = scalar + C_INCR if valence > 0 else scalar - C_INCR
    return scalar


def _valence(i: int, base: float, words: list[str], lows: list[str], is_cap_diff: bool) -> float:
    """VADER's ``sentiment_valence`` for lexicon word ``i``: its three look-back steps unrolled,
    on one pre-lowered word list instead of one rebuilt per check."""
    lower = lows[i]
    valence = base
    if lower == "no" and i != len(lows) - 1 and lows[i + 1] in _LEXICON:
        valence = 0.0
    if (
        (i > 0 and lows[i - 1] == "no")
        or (i > 1 and lows[i - 2] == "no")
        or (i > 2 and lows[i - 3] == "no" and lows[i - 1] in ("or", "nor"))
    ):
        valence = base * N_SCALAR
    if is_cap_diff and words[i].isupper():
        valence = valence + C_INCR if valence > 0 else valence - C_INCR
    # one word back
    if i > 0 and (w := lows[i - 1]) not in _LEXICON:
        booster = BOOSTER_DICT.get(w)
        if booster is not None:
            valence = valence + _boost(booster, words[i - 1], valence, is_cap_diff)
        if _negated(w):
            valence = valence * N_SCALAR
    # two words back
    if i > 1 and (w := lows[i - 2]) not in _LEXICON:
        booster = BOOSTER_DICT.get(w)
        if booster is not None:
            s = _boost(booster, words[i - 2], valence, is_cap_diff)
            valence = valence + (s * 0.95 if s != 0 else s)
        if w == "never" and lows[i - 1] in ("so", "this"):
            valence = valence * 1.25
        elif w == "without" and lows[i - 1] == "doubt":
            pass
        elif _negated(w):
            valence = valence * N_SCALAR
    # three words back
    if i > 2 and (w := lows[i - 3]) not in _LEXICON:
        booster = BOOSTER_DICT.get(w)
        if booster is not None:
            s = _boost(booster, words[i - 3], valence, is_cap_diff)
            valence = valence + (s * 0.9 if s != 0 else s)
        if (w == "never" and lows[i - 2] in ("so", "this")) or lows[i - 1] in ("so", "this"):
            valence = valence * 1.25
        elif w == "without" and (lows[i - 2] == "doubt" or lows[i - 1] == "doubt"):
            pass
        elif _negated(w):
            valence = valence * N_SCALAR
        valence = _special_idioms(valence, lows, i)
    # VADER's ``_least_check``
    if i > 1 and lows[i - 1] not in _LEXICON and lows[i - 1] == "least":
        if lows[i - 2] != "at" and lows[i - 2] != "very":
            valence = valence * N_SCALAR
    elif i > 0 and lows[i - 1] not in _LEXICON and lows[i - 1] == "least":
        valence = valence * N_SCALAR
    return valence


def _split(text: str) -> list[str]:
    """``SentiText.words_and_emoticons``: strip edge punctuation unless that leaves <= 2 chars."""
    return [t if len(s := t.strip(_PUNCTUATION)) <= 2 else s for t in text.split()]


def _polarity(scores: list[float], count: int, text: str) -> dict[str, float]:
    """VADER's ``score_valence`` from the non-zero valences of ``count`` words.

    Same arithmetic in the same order; the zeros VADER also sums add nothing, and count as neutral.
    """
    if not count:
        return {"neg": 0.0, "neu": 0.0, "pos": 0.0, "compound": 0.0}
    sum_s = float(sum(scores))
    questions = text.count("?")  # VADER's _punctuation_emphasis
    amplifier = min(text.count("!"), 4) * 0.292 + (
        0 if questions < 2 else 0.18 * questions if questions <= 3 else 0.96
    )
    if sum_s > 0:
        sum_s += amplifier
    elif sum_s < 0:
        sum_s -= amplifier
    compound = normalize(sum_s)
    pos_sum = float(sum(float(v) + 1 for v in scores if v > 0))
    neg_sum = float(sum(float(v) - 1 for v in scores if v < 0))
    neu_count = count - len(scores)
    if pos_sum > math.fabs(neg_sum):
        pos_sum += amplifier
    elif pos_sum < math.fabs(neg_sum):
        neg_sum -= amplifier
    total = pos_sum + math.fabs(neg_sum) + neu_count
    return {
        "neg": round(math.fabs(neg_sum / total), 3),
        "neu": round(math.fabs(neu_count / total), 3),
        "pos": round(math.fabs(pos_sum / total), 3),
        "compound": round(compound, 4),
    }


def _score(text: str) -> tuple[dict, list[str], list[tuple[int, float]]]:
    """Same result as VADER's ``polarity_scores``, plus the lowered words and (index, valence) of
    every word with a non-zero final valence."""
    text = _strip_emojis(text)
    words = _split(text)
    lows = list(map(str.lower, words))
    lexicon = _LEXICON
    if lexicon.keys().isdisjoint(lows):
        return _polarity([], len(words), text), lows, []
    is_cap_diff = 0 < len(words) - sum(map(str.isupper, words)) < len(words)  # allcap_differential
    last = len(words) - 1
    sentiments: list[float] = [0] * len(words)
    hits = [i for i, lower in enumerate(lows) if lower in lexicon]
    for i in hits:
        lower = lows[i]
        if lower in BOOSTER_DICT or (lower == "kind" and i < last and lows[i + 1] == "of"):
            continue
        sentiments[i] = _valence(i, lexicon[lower], words, lows, is_cap_diff)
    if "but" in lows:
        sentiments = _ANALYZER._but_check(words, sentiments)
    nonzero = [(i, sentiments[i]) for i in hits if sentiments[i]]
    return _polarity([v for _, v in nonzero], len(words), text), lows, nonzero


def _display(i: int, lows: list[str], valence: float) -> str:
    """The word as the reason shows it: "not good" when a negation flipped its lexicon sign."""
    word = lows[i].strip("'\"")
    base = _LEXICON.get(lows[i], 0.0)
    if base and (base > 0) != (valence > 0):
        before = lows[max(0, i - 3) : i]
        if any(_negated(w) or w in ("no", "least") for w in before):
            return f"not {word}"
    return word


def is_opinion_word(word: str) -> bool:
    """Whether VADER treats the (lower-case) word as sentiment-bearing or as an intensifier."""
    return word in _LEXICON or word in BOOSTER_DICT


def _top(pairs: list[tuple[float, int, str]]) -> tuple[str, ...]:
    """Strongest first, then earliest; each word once."""
    seen: list[str] = []
    for _, _, word in sorted(pairs):
        if word not in seen:
            seen.append(word)
        if len(seen) == _MAX_REASON_WORDS:
            break
    return tuple(seen)


def _reason(label: str, positive: tuple[str, ...], negative: tuple[str, ...]) -> str:
    parts = {
        "positive": f"positive words: {', '.join(positive)}" if positive else "",
        "negative": f"negative words: {', '.join(negative)}" if negative else "",
    }
    if label == "negative":
        order = [parts["negative"], parts["positive"]]
    else:
        order = [parts["positive"], parts["negative"]]
    text = "; ".join(p for p in order if p)
    if label == "neutral":
        return f"mostly neutral wording; {text}" if text else "no clearly positive or negative words"
    return text or f"overall {label} tone"


def _score_sentences(text: str) -> tuple[dict, list[str], list[tuple[int, float]]]:
    """VADER's scores with negation and boosters kept inside their sentence.

    VADER looks three words back whatever the punctuation, so "never answered. Total waste"
    reads as "not waste"; scoring sentence by sentence and pooling the valences avoids that.
    """
    lows: list[str] = []
    valences: list[tuple[int, float]] = []
    for sentence in _SENTENCE_END.split(text):
        if sentence.strip():
            _, sentence_lows, sentence_valences = _score(sentence)
            valences.extend((i + len(lows), v) for i, v in sentence_valences)
            lows.extend(sentence_lows)
    return _polarity([v for _, v in valences], len(lows), text), lows, valences


@functools.lru_cache(maxsize=1024)
def analyze(text: str) -> Sentiment:
    """Label, confidence and reason for one text; a small cache, as a batch may repeat a text."""
    scores, lows, valences = _score_sentences(text)
    compound = scores["compound"]
    positive: list[tuple[float, int, str]] = []
    negative: list[tuple[float, int, str]] = []
    for i, valence in valences:
        if valence > 0:
            positive.append((-valence, i, _display(i, lows, valence)))
        elif valence < 0:
            negative.append((valence, i, _display(i, lows, valence)))
    if compound >= POSITIVE_THRESHOLD:
        label = "positive"
    elif compound <= NEGATIVE_THRESHOLD:
        label = "negative"
    else:
        label = "neutral"
    if label == "neutral":
        confidence = 0.6 + 0.35 * (1.0 - abs(compound) / POSITIVE_THRESHOLD)
    else:
        confidence = 0.5 + 0.49 * abs(compound)
    pos_words, neg_words = _top(positive), _top(negative)
    return Sentiment(
        label=label,
        compound=compound,
        confidence=round(min(1.0, max(0.0, confidence)), 2),
        reason=_reason(label, pos_words, neg_words),
        positive_words=pos_words,
        negative_words=neg_words,
        pos=scores["pos"],
        neg=scores["neg"],
        neu=scores["neu"],
    )
