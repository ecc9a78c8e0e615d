"""Split a prompt into the instruction (what to do) and the subject (the text to do it to).

A person phrases the same request in many layouts: one line ("Summarize this: <text>",
"Classify ... Review: <text>"), the instruction then the text on the following lines, a system
message plus a user message, the text in quotes, or under a ``Review:``/``Text:``/``Input:``
marker. Answers must be drawn from the subject only, or the instruction's own words (its label
list, "summarize", ...) leak into them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Markers that introduce the text to work on, at a line start or after a sentence.
_MARKERS = (
    "review|customer review|product review|text|input|document|article|passage|message|comment|"
    "feedback|tweet|post|transcript|content|excerpt|ticket|paragraph|sentence|story|snippet|"
    "question|context"
)
_MARKER_RE = re.compile(
    rf"(?:^|(?<=[.!?:;\n\"'”]))[ \t]*(?:the[ \t]+)?(?:{_MARKERS})[ \t]*(?:#?\d+[ \t]*)?:[ \t]*",
    re.IGNORECASE | re.MULTILINE,
)
# Quoted text of at least two words: "…", “…”, «…», '…' (not apostrophes), or a code fence.
_QUOTE_RE = re.compile(
    r"\"([^\"\n]{2,}\s[^\"]{2,})\"|“([^”]{2,}\s[^”]{2,})”|«\s*([^»]{2,}\s[^»]{2,}?)\s*»"
    r"|(?<!\w)'([^'\n]{2,}\s[^']{2,})'(?!\w)|```\w*\n?(.+?)```",
    re.S,
)
_LEADING_RE = re.compile(
    r"^(?:please[ ,]+|kindly[ ,]+|can you[ ,]+|could you[ ,]+|would you[ ,]+|i need you to[ ,]+|"
    r"i want you to[ ,]+|i'd like you to[ ,]+|your task is to[ ,]+|task:[ ]*|instruction:[ ]*|"
    r"you are[^.]*?\.\s*|as an? [^,]*,\s*|in (?:under |at most |about |no more than )?\w+ (?:words|sentences?),\s*|"
    r"briefly,\s*|now,\s*)+",
    re.IGNORECASE,
)
_TASK_VERBS_TEXT = """classify categorize categorise label tag rate determine decide identify detect tell summarize
summarise condense shorten tldr tl;dr extract pull find list parse write generate draft compose
create produce give suggest translate evaluate grade score assess judge compare rewrite
paraphrase answer analyze analyse respond reply output describe explain provide convert fill"""
_TASK_VERBS = frozenset(_TASK_VERBS_TEXT.split())
# Question openers count only when the sentence is about the text ("Is this review positive?").
_QUESTION_WORDS = frozenset(("is", "does", "did", "was", "are", "what", "which", "how"))
_ABOUT_THE_TEXT = ("this", "review", "text", "the answer", "response", "following", "tone", "customer")
_INSTRUCTION_HINTS = (
    "sentiment",
    "summar",
    "classif",
    "extract",
    "json",
    "translate",
    "the following",
    "answer with",
    "respond with",
    "reply with",
    "one word",
    "one sentence",
)
_SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True, slots=True)
class Prompt:
    instruction: str  # everything that says what to do (system, developer, instructions, the lead-in)
    subject: str  # the text the instruction is about
    user: str  # the last user message as sent, for tasks that read several labelled parts


def looks_like_instruction(text: str) -> bool:
    """Whether a sentence reads as a request to do something rather than as content."""
    stripped = _LEADING_RE.sub("", text.strip()).lower()
    if not stripped:
        return False
    first = stripped.split(None, 1)[0].strip(",.:;!?*\"'")
    if first in _TASK_VERBS:
        return True
    if first in _QUESTION_WORDS and any(a in stripped for a in _ABOUT_THE_TEXT):
        return True
    return any(h in stripped for h in _INSTRUCTION_HINTS)


def _strip_quotes(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] + text[-1] in ('""', "''", "“”", "«»", "``"):
        return text[1:-1].strip()
    return text


def split_text(text: str, lead_sentences: bool = True) -> tuple[str, str]:
    """(instruction, subject) of one message; an instruction may also close the message
    ("<text> Is the answer correct? Reply yes or no.")."""
    lead, subject = _split_leading(text, lead_sentences)
    if lead or not lead_sentences or not subject:
        return lead, subject
    sentences = _SENTENCE_RE.split(subject)
    taken = len(sentences)
    while taken > 1 and looks_like_instruction(sentences[taken - 1]):
        taken -= 1
    if taken == len(sentences):
        return "", subject
    return " ".join(sentences[taken:]), " ".join(sentences[:taken]).strip()


def _split_leading(text: str, lead_sentences: bool) -> tuple[str, str]:
    """(instruction, subject) with the instruction first; empty when the text starts with none.

    ``lead_sentences`` off (a system message already gave the instruction) keeps a text whose
    first sentence merely sounds like a request ("Tell everyone: it leaks.") whole.
    """
    text = text.strip()
    if not text:
        return "", ""
    marker = _MARKER_RE.search(text)
    if marker is not None:
        rest = text[marker.end() :]
        if rest.strip():
            return text[: marker.start()].strip(), _strip_quotes(rest)
    quote = max(_QUOTE_RE.finditer(text), key=lambda m: m.end() - m.start(), default=None)
    if quote is not None:
        lead = text[: quote.start()]
        if looks_like_instruction(lead) or looks_like_instruction(text[quote.end() :]):
            inner = next(g for g in quote.groups() if g)
            around = " ".join(f"{lead} {text[quote.end() :]}".split())
            return around.strip(" :"), inner.strip()
    first_line, newline, rest = text.partition("\n")
    if newline and rest.strip() and looks_like_instruction(first_line):
        return first_line.strip(), _strip_quotes(rest)
    head, colon, tail = text.partition(":")
    if colon and tail.strip() and "\n" not in head and looks_like_instruction(head):
        return head.strip(), _strip_quotes(tail)
    sentences = _SENTENCE_RE.split(text) if lead_sentences else []
    if len(sentences) > 1 and looks_like_instruction(sentences[0]):
        taken = 1
        while taken < len(sentences) - 1 and looks_like_instruction(sentences[taken]):
            taken += 1
        return " ".join(sentences[:taken]), _strip_quotes(" ".join(sentences[taken:]))
    if lead_sentences and len(sentences) == 1 and looks_like_instruction(text):
        return text, ""  # a request with nothing to work on: "Write a haiku about autumn."
    return "", text


def from_parts(context: list[str], user: str) -> Prompt:
    """The prompt of ``context`` (system/developer/instructions texts) plus the last user text."""
    lead, subject = split_text(user, lead_sentences=not any(context))
    if not subject and any(context):  # the user message is only an instruction; the text is elsewhere
        subject = user
    instruction = "\n".join([*(c for c in context if c), lead]).strip()
    return Prompt(instruction=instruction, subject=subject, user=user)
