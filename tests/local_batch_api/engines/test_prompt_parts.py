"""Instruction and subject come apart in every layout people use, and plain texts stay whole."""

from __future__ import annotations

import pytest

from local_batch_api.engines.prompt_parts import from_parts, split_text
from local_batch_api.engines.tasks import detect

REVIEW = "The lid cracked on day one. Shame, it looked nice."


@pytest.mark.parametrize(
    ("text", "instruction", "subject"),
    [
        (f"Summarize this review in one sentence: {REVIEW}", "Summarize this review in one sentence", REVIEW),
        (
            f"Classify the sentiment as positive or negative. Review: {REVIEW}",
            "Classify the sentiment as positive or negative.",
            REVIEW,
        ),
        (
            f"Classify the sentiment of this review.\n{REVIEW}",
            "Classify the sentiment of this review.",
            REVIEW,
        ),
        (f'What is the sentiment of "{REVIEW}"?', "What is the sentiment of ?", REVIEW),
        (f"Translate into German: «{REVIEW}»", "Translate into German", REVIEW),
        (f"Please extract the email.\nText:\n{REVIEW}", "Please extract the email.", REVIEW),
        (f"{REVIEW}\nWhat is the sentiment of this review?", "What is the sentiment of this review?", REVIEW),
        (REVIEW, "", REVIEW),
        ("This product is amazing! I love it.", "", "This product is amazing! I love it."),
        ("Is it worth it? Absolutely, I use it daily.", "", "Is it worth it? Absolutely, I use it daily."),
        ("Write a haiku about autumn.", "Write a haiku about autumn.", ""),
    ],
)
def test_split_layouts(text: str, instruction: str, subject: str) -> None:
    assert split_text(text) == (instruction, subject)


def test_a_system_message_instructs_and_the_user_text_stays_whole() -> None:
    prompt = from_parts(
        ["Summarize the customer's message."], "Tell everyone. It leaks and the lid is loose."
    )
    assert prompt.subject == "Tell everyone. It leaks and the lid is loose."
    assert prompt.instruction == "Summarize the customer's message."
    demo = from_parts(
        ["You classify reviews."], f"Product: Teapot (Kitchen)\nRating: 1 of 5\nReview: {REVIEW}"
    )
    assert demo.subject == REVIEW


@pytest.mark.parametrize(
    ("instruction", "kind", "labels"),
    [
        (
            "Classify the sentiment as positive, neutral or negative.",
            "sentiment",
            ("positive", "neutral", "negative"),
        ),
        ("Label the mood as happy or unhappy.", "sentiment", ("happy", "unhappy")),
        ("Is the summary faithful to the source? Answer yes or no.", "evaluate", ("yes", "no")),
        (
            "Classify the ticket into billing, shipping or other.",
            "classify",
            ("billing", "shipping", "other"),
        ),
        ("Summarize the text in 20 words.", "summary", ()),
        ("Extract the email and phone number.", "extract", ()),
        ("Write a tagline for our new app.", "generate", ()),
        ("Translate into Spanish.", "translate", ()),
    ],
)
def test_tasks(instruction: str, kind: str, labels: tuple[str, ...]) -> None:
    task = detect(instruction)
    assert (task.kind, task.labels) == (kind, labels)
