"""Free-text and ``json_object`` answers to a task, drawn from the subject text only.

Each task gets the answer a person would accept from a model: a label from the instruction's own
label set, a summary that is a sentence of the text (never the instruction), the facts asked for,
a grade with its reason, content built from the given facts. Templates vary with the request's
seed, so the same body always gets the same words.
"""

from __future__ import annotations

import re

from .extraction import Facts
from .prompt_parts import Prompt
from .schema_answer import STOPWORDS, FillContext
from .sentiment import Sentiment, analyze
from .tasks import SENTIMENT_SYNONYMS, Task, label_cues


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _pairs(text: str) -> dict[str, str]:
    """A word table from "english:other ..." pairs."""
    return dict(pair.split(":") for pair in text.split())


_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")
_PART_RE = re.compile(
    r"(?:^|(?<=[.!?\n\"'”]))[ \t]*(question|query|prompt|reference answer|reference|expected answer|expected|"
    r"ground truth|gold answer|gold|model answer|candidate answer|candidate|answer|response|output|prediction|"
    r"summary|context|source|document|article|text)[ \t]*:[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
_ANSWER_PARTS = (
    "model answer",
    "candidate answer",
    "candidate",
    "answer",
    "response",
    "output",
    "prediction",
    "summary",
)
_REFERENCE_PARTS = (
    "reference answer",
    "reference",
    "expected answer",
    "expected",
    "ground truth",
    "gold answer",
    "gold",
)
_SOURCE_PARTS = ("context", "source", "document", "article", "text")
_REFUSALS = (
    "i don't know",
    "i do not know",
    "not sure",
    "cannot answer",
    "can't answer",
    "no idea",
    "unsure",
)
_GOOD_VERDICTS = _words(
    "correct pass passed yes true good relevant faithful accurate acceptable helpful supported consistent"
)
_QUESTION_FILLER = _words(
    "review reviewer text customer mention mentions mentioned talk talks say says said does do did is are was were has have any anything something about"
)
_ENTITY_NAMES = {
    "email": "Email",
    "phone": "Phone",
    "url": "Link",
    "price": "Price",
    "date": "Date",
    "name": "Name",
    "count": "Quantity",
    "rating": "Rating",
}
_TRANSLATIONS: dict[str, dict[str, str]] = {
    "french": _pairs(
        "the:le a:un and:et is:est are:sont very:très good:bon great:excellent bad:mauvais not:pas i:je you:vous it:il this:ce product:produit love:adore works:fonctionne well:bien price:prix delivery:livraison fast:rapide slow:lent broken:cassé quality:qualité thank:merci thanks:merci hello:bonjour was:était my:mon order:commande arrived:arrivé late:tard with:avec for:pour"
    ),
    "spanish": _pairs(
        "the:el a:un and:y is:es are:son very:muy good:bueno great:excelente bad:malo not:no i:yo you:usted it:lo this:este product:producto love:encanta works:funciona well:bien price:precio delivery:entrega fast:rápido slow:lento broken:roto quality:calidad thank:gracias thanks:gracias hello:hola was:fue my:mi order:pedido arrived:llegó late:tarde with:con for:para"
    ),
    "german": _pairs(
        "the:das a:ein and:und is:ist are:sind very:sehr good:gut great:großartig bad:schlecht not:nicht i:ich you:Sie it:es this:dieses product:Produkt love:liebe works:funktioniert well:gut price:Preis delivery:Lieferung fast:schnell slow:langsam broken:kaputt quality:Qualität thank:danke thanks:danke hello:hallo was:war my:mein order:Bestellung arrived:angekommen late:spät with:mit for:für"
    ),
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_RE.split(" ".join(text.split(" "))) if s.strip()]


def _content_words(text: str) -> list[str]:
    return [w for w in _WORD_RE.findall(text.lower()) if (w not in STOPWORDS and len(w) > 2) or w.isdigit()]


def _stems(words: list[str]) -> set[str]:
    return {w[:5] for w in words}


# -- sentiment -------------------------------------------------------------------------------------


def sentiment_label(task: Task, s: Sentiment) -> str:
    """The label for ``s`` in the instruction's label set, spelled as the instruction spells it."""
    if not task.labels:
        return s.label
    spelled = {SENTIMENT_SYNONYMS[label.lower()]: label for label in task.labels}
    if s.is_mixed and "mixed" in spelled:
        return spelled["mixed"]
    if s.label in spelled:
        return spelled[s.label]
    if s.label == "neutral" and "mixed" in spelled:
        return spelled["mixed"]
    side = "positive" if s.compound >= 0 else "negative"
    return spelled.get(side) or next(iter(spelled.values()))


def _on_scale(scale: tuple[int, int], position: float) -> int:
    low, high = scale
    return max(low, min(high, round(low + position * (high - low))))


def _sentiment(task: Task, prompt: Prompt) -> str:
    s = analyze(prompt.subject)
    reason = f"{_cap(s.reason)}."
    if task.scale is not None:
        value = _on_scale(task.scale, (s.compound + 1) / 2)
        return str(value) if task.terse else f"{value} out of {task.scale[1]}. {reason}"
    label = sentiment_label(task, s)
    if task.terse:
        return label if task.labels else _cap(label)
    return f"{_cap(label)}. {reason}"


# -- summaries -------------------------------------------------------------------------------------


def _lower_first(sentence: str) -> str:
    first = sentence.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or not first[1:2].islower():
        return sentence  # "I", "API", "Q3": kept as written
    return sentence[:1].lower() + sentence[1:]


def _merged(sentences: list[str]) -> str:
    """Short sentences as one: "Revenue rose, churn fell and we hired 14 engineers."."""
    bare = [s.rstrip(".!?;") for s in sentences]
    if len(bare) == 1:
        return sentences[0]
    rest = [_lower_first(s) for s in bare[1:]]
    return f"{', '.join([bare[0], *rest[:-1]])} and {rest[-1]}."


def _cut(words: list[str], limit: int) -> str:
    """At most ``limit`` words, ended at a clause boundary when one is near."""
    text = " ".join(words[:limit])
    if len(words) > limit:
        comma = text.rfind(",")
        if comma > len(text) // 2:
            text = text[:comma]
    return text.rstrip(",;: ")


def summarize(task: Task, text: str) -> str:
    """The text's point within the asked length, in its own words: its leading sentence, or its
    short sentences merged into one."""
    sentences = _sentences(text)
    if not sentences:
        return "The text is empty, so there is nothing to summarize."
    limit = task.word_limit or 40
    if task.sentence_limit is not None and task.sentence_limit > 1:
        summary = _cut(" ".join(sentences[: task.sentence_limit]).split(), limit)
    else:
        taken = 1
        while taken < min(3, len(sentences)) and len(" ".join(sentences[: taken + 1]).split()) <= min(
            limit, 30
        ):
            taken += 1
        summary = _cut(_merged(sentences[:taken]).split(), limit)
    if summary[-1] not in ".!?":
        summary += "."
    return _cap(summary)


# -- extraction ------------------------------------------------------------------------------------


def _found(task: Task, text: str) -> dict[str, str | None]:
    facts = Facts(text)
    kinds = task.entities or tuple(_ENTITY_NAMES)
    values = {kind: facts.first(kind) for kind in kinds}
    if not task.entities:
        values = {k: v for k, v in values.items() if v is not None}
    return values


def _extract(task: Task, prompt: Prompt) -> str:
    values = _found(task, prompt.subject)
    if not values:
        return "The text gives no email, phone number, link, price, date or name."
    if task.terse and len(values) == 1:
        return next(iter(values.values())) or "Not mentioned"
    return "\n".join(
        f"{_ENTITY_NAMES[k]}: {v if v is not None else 'not mentioned'}" for k, v in values.items()
    )


# -- evaluation ------------------------------------------------------------------------------------


def _parts(text: str) -> dict[str, str]:
    """Labelled sections of an evaluation prompt ("Question: ... Answer: ...")."""
    marks = list(_PART_RE.finditer(text))
    return {
        m.group(1).lower(): text[m.end() : marks[i + 1].start() if i + 1 < len(marks) else len(text)].strip()
        for i, m in enumerate(marks)
    }


def grade(prompt: Prompt) -> tuple[float, str]:
    """(quality in [0, 1], why) of the answer under evaluation in the prompt."""
    text = prompt.user
    for piece in _SENTENCE_RE.split(prompt.instruction):  # a closing "Is the answer correct?" is no part
        if piece.strip():
            text = text.replace(piece.strip(), " ")
    parts = _parts(text) or _parts(prompt.subject)
    answer = next((parts[k] for k in _ANSWER_PARTS if parts.get(k)), "")
    if not answer:
        s = analyze(prompt.subject)
        return (s.compound + 1) / 2, f"{_cap(s.reason)}."
    words = _content_words(answer)
    if any(r in answer.lower() for r in _REFUSALS) or not words:
        return 0.1, "The answer does not address the question."
    reference = next((parts[k] for k in _REFERENCE_PARTS if parts.get(k)), "")
    if reference:
        wanted = _content_words(reference)
        shared = _stems(words) & _stems(wanted)
        precision = len(shared) / max(1, len(_stems(words)))
        recall = len(shared) / max(1, len(_stems(wanted)))
        score = 0.7 * recall + 0.3 * precision  # a complete answer may say more than the reference
        numbers = {w for w in wanted if w.isdigit()}
        if numbers and not numbers <= set(words):
            score *= 0.3
        missing = [w for w in dict.fromkeys(wanted) if w[:5] not in shared][:3]
        if score >= 0.5:
            return min(1.0, 0.35 + score), "The answer agrees with the reference" + (
                f" but leaves out {', '.join(missing)}." if missing and recall < 0.75 else "."
            )
        return score * 0.6, "The answer does not match the reference" + (
            f"; it misses {', '.join(missing)}." if missing else "."
        )
    source = next((parts[k] for k in _SOURCE_PARTS if parts.get(k)), "")
    if source:
        supported = _stems(words) & _stems(_content_words(source))
        share = len(supported) / max(1, len(_stems(words)))
        unsupported = [w for w in dict.fromkeys(words) if w[:5] not in supported][:3]
        why = (
            "Every claim is supported by the source."
            if not unsupported
            else (f"Not supported by the source: {', '.join(unsupported)}.")
        )
        return share, why
    question = parts.get("question") or parts.get("query") or parts.get("prompt") or ""
    asked = _stems(_content_words(question))
    covered = len(asked & _stems(words)) / max(1, len(asked)) if asked else 0.5
    length = min(1.0, len(words) / 6)
    quality = 0.3 + 0.4 * covered + 0.3 * length
    why = (
        "The answer addresses the question directly."
        if covered >= 0.5
        else ("The answer only partly addresses the question.")
    )
    return quality, why


def _verdict(labels: tuple[str, ...], quality: float) -> str:
    good = [label for label in labels if label.lower() in _GOOD_VERDICTS]
    bad = [label for label in labels if label.lower() not in _GOOD_VERDICTS]
    if quality >= 0.5:
        return (good or labels)[0]
    return (bad or labels[-1:])[0]


def evaluation(task: Task, prompt: Prompt) -> tuple[object, str]:
    """(score or verdict, why) on the task's scale (1 to 5 by default) or label set."""
    quality, why = grade(prompt)
    if task.labels and task.scale is None:
        return _verdict(task.labels, quality), why
    return _on_scale(task.scale or (1, 5), quality), why


def _evaluate(task: Task, prompt: Prompt) -> str:
    value, why = evaluation(task, prompt)
    if task.terse:
        return str(value)
    if isinstance(value, int):
        return f"Score: {value}/{(task.scale or (1, 5))[1]}. {why}"
    return f"{_cap(str(value))}. {why}"


# -- generation ------------------------------------------------------------------------------------

_CLOSINGS = (
    "Built for everyday use, it is simple to set up and easy to keep clean.",
    "A practical choice that does its job quietly and reliably, day after day.",
    "Designed to make daily routines a little easier, it is ready to use out of the box.",
)


def _facts_of(topic: str) -> list[str]:
    parts = re.split(r"\s*(?:[,;\n]|\bwith\b|\band\b|\bthat\b|\bwhich\b|\bfeaturing\b)\s*", topic)
    return [p.strip(" .:-") for p in parts if p.strip(" .:-")]


def _article_free(phrase: str) -> str:
    return re.sub(r"^(?:(?:an?|the|our|my|new)\s+)+", "", phrase, flags=re.IGNORECASE)


def _title(phrase: str) -> str:
    return " ".join(w if w.isupper() else _cap(w) for w in phrase.split()[:10])


def _description(facts: list[str], seed: int) -> str:
    name = _article_free(facts[0]) if facts else "product"
    details = facts[1:]
    text = f"Introducing the {name}."
    if details:
        listed = ", ".join(details[:-1]) + (" and " if len(details) > 1 else "") + details[-1]
        text += f" It comes with {listed}."
    return f"{text} {_CLOSINGS[seed % len(_CLOSINGS)]}"


def _reply_to_review(text: str) -> str:
    s = analyze(text)
    ctx = FillContext(text, 0)
    thing = ctx.topic(0)
    if s.label == "negative":
        return (
            f"We're sorry to hear about your experience with the {thing}. That is not the standard we aim for. "
            "Please contact our support team with your order number and we will arrange a replacement or a refund."
        )
    if s.label == "positive":
        return (
            f"Thank you for your kind review! We're delighted to hear you are enjoying the {thing}, "
            "and we hope it serves you well for a long time."
        )
    return (
        f"Thank you for your feedback on the {thing}. We read every review and will pass your comments "
        "on to our product team."
    )


def _generate(task: Task, prompt: Prompt, seed: int) -> str:
    lower = prompt.instruction.lower()
    source = prompt.subject or task.topic
    if re.search(r"\b(?:reply|respond|response)\b", lower) and prompt.subject:
        return _reply_to_review(prompt.subject)
    facts = _facts_of(source) or ["product"]
    name = _article_free(facts[0])
    if any(k in lower for k in ("title", "headline", "subject line", "tagline", "slogan", "name for")):
        return _title(f"{name}: {facts[1]}" if len(facts) > 1 else name)
    if re.search(r"\b(?:ideas|list|bullets?|suggestions|brainstorm)\b", lower):
        subject = re.split(r"\b(?:about|on|for)\s+", source)[-1].strip(" .") or name
        lines = (
            f"A beginner's guide to {subject}",
            f"Five common mistakes with {subject}, and how to avoid them",
            f"What a year of {subject} taught us",
        )
        return "\n".join(f"{i}. {line}" for i, line in enumerate(lines, start=1))
    topics = [w for w in FillContext(source, seed).topics if w.isalpha()][:2]
    if any(k in lower for k in ("tweet", "post", "caption")):
        tags = " ".join(f"#{t}" for t in topics)
        return (
            f"{_cap(name)} is here"
            + (f": {', '.join(facts[1:])}." if len(facts) > 1 else "!")
            + f" {tags}".rstrip()
        )
    if "haiku" in lower or "poem" in lower:
        first = topics[0] if topics else name
        return f"{_cap(first)} at first light\nquiet hours drift slowly by\n{name} stays with me"
    if re.search(r"\b(?:email|letter|newsletter)\b", lower):
        details = f": {', '.join(facts[1:])}" if len(facts) > 1 else ""
        return (
            f"Subject: {_title(name)}\n\nHi there,\n\nWe're excited to share our {name}{details}. "
            "Take a look while it lasts, and thank you for being a customer.\n\nBest regards,\nThe team"
        )
    body = _description(facts, seed)
    if task.word_limit:
        body = " ".join(body.split()[: task.word_limit]).rstrip(",;:")
    return body


_GREETINGS = ("hello", "hi", "hey", "good morning", "good afternoon", "good evening")
_THANKS = ("thanks", "thank you", "cheers")
_OPENING_RE = re.compile(
    r"^(?:please\s+)?(?:explain|describe|tell me(?: about)?|give me an overview of)\s+"
    r"(?:what|how|why|who)?\s*",
    re.IGNORECASE,
)


def _is_chat_turn(text: str) -> bool:
    """A greeting, a thanks or one short question: talk to answer, not a text to summarize."""
    said = text.lower().strip(" !.?")
    if said in _GREETINGS or said in _THANKS:
        return True
    return text.rstrip().endswith("?") and len(text.split()) <= 25 and len(_sentences(text)) == 1


def _overview(topic: str, seed: int) -> str:
    """A short, hedged note on a topic asked about with no text to work from."""
    said = topic.lower().strip(" !.?")
    if said in _GREETINGS:
        return "Hello! How can I help you today?"
    if said in _THANKS:
        return "You're welcome! Let me know if there is anything else I can help with."
    if topic.rstrip().endswith("?") and not _OPENING_RE.match(topic):
        return (
            "I don't have enough context to answer that reliably. "
            "If you share the text or details it should be based on, I can answer from them."
        )
    topic = re.sub(r"\s+(?:is|are|works?|means?)$", "", _OPENING_RE.sub("", topic).strip(" ?.!")) or topic
    keys = [w for w in FillContext(topic, seed).topics if w.isalpha()][:3] or [topic]
    listed = ", ".join(keys[:-1]) + (" and " if len(keys) > 1 else "") + keys[-1]
    return (
        f"Here is a brief overview of {topic}. The main points usually concern {listed}. "
        "If you share a specific question or a text, I can go into more detail."
    )


# -- the rest --------------------------------------------------------------------------------------


def _translate(task: Task, prompt: Prompt) -> str:
    table = _TRANSLATIONS.get(task.language or "", {})

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        out = table.get(word.lower(), word)
        return _cap(out) if word[:1].isupper() else out

    return re.sub(r"[A-Za-z']+", swap, prompt.subject) if table else prompt.subject


def _question(task: Task, prompt: Prompt) -> str:
    asked = [w for w in _content_words(prompt.instruction) if w not in _QUESTION_FILLER]
    present = _stems(_content_words(prompt.subject))
    hits = [w for w in asked if w[:5] in present]
    if hits:
        return "Yes." if task.terse else f"Yes. The text mentions {', '.join(hits[:3])}."
    what = ", ".join(asked[:3]) or "that"
    return "No." if task.terse else f"No. The text does not mention {what}."


def classify(task: Task, text: str, seed: int) -> str:
    """The listed label whose words (or their usual cues) the text shares most; 'other' when none."""
    present = _stems(_content_words(text))
    if not task.labels:
        return FillContext(text, seed).topic(0)

    scored = [(len(label_cues(label) & present), -i, label) for i, label in enumerate(task.labels)]
    best = max(scored)
    if best[0]:
        return best[2]
    fallback = [label for label in task.labels if label.lower() in ("other", "general", "misc", "none")]
    return fallback[0] if fallback else task.labels[seed % len(task.labels)]


def answer_text(task: Task, prompt: Prompt, seed: int) -> str:
    """The assistant's text for one choice."""
    kind = task.kind
    if kind == "sentiment":
        return _sentiment(task, prompt)
    if kind == "summary":
        return summarize(task, prompt.subject)
    if kind == "extract":
        return _extract(task, prompt)
    if kind == "evaluate":
        return _evaluate(task, prompt)
    if kind == "generate":
        return _generate(task, prompt, seed)
    if kind == "none" and not prompt.subject and task.topic:
        return _overview(task.topic, seed)
    if kind == "none" and _is_chat_turn(prompt.subject):
        return _overview(prompt.subject, seed)
    if kind == "translate":
        return _translate(task, prompt)
    if kind == "question":
        return _question(task, prompt)
    if kind == "classify":
        label = classify(task, prompt.subject, seed)
        return label if task.terse else f"{_cap(label)}."
    return FillContext(prompt.subject, seed).summary


def answer_object(task: Task, prompt: Prompt, seed: int) -> dict:
    """A ``json_object`` answer: the task's answer under the keys a person would expect."""
    kind = task.kind
    if kind == "sentiment":
        s = analyze(prompt.subject)
        return {"label": sentiment_label(task, s), "confidence": s.confidence, "reason": s.reason}
    if kind == "extract":
        return _found(task, prompt.subject)
    if kind == "evaluate":
        value, why = evaluation(task, prompt)
        return {"score" if isinstance(value, int) else "verdict": value, "reason": why}
    if kind == "classify":
        return {"label": classify(task, prompt.subject, seed)}
    ctx = FillContext(prompt.subject or task.topic, seed)
    if kind in ("summary", "none") and prompt.subject:
        return {"summary": summarize(task, prompt.subject), "keywords": ctx.topics[:3]}
    return {"text": answer_text(task, prompt, seed), "keywords": ctx.topics[:3]}
