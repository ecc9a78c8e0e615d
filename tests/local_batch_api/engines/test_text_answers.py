"""Free-text answers beyond the golden set: summaries keep to the asked length, talk gets talk."""

from __future__ import annotations

import pytest

from local_batch_api.engines.local import LocalEngine

FIGURES = "Our Q3 revenue rose 12% to $4.2M. Churn fell to 3%. We hired 14 engineers."


def _say(messages: str | list) -> str:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    reply = LocalEngine().answer("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": messages})
    assert reply.status_code == 200, reply.body
    return reply.body["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        (
            [
                {"role": "system", "content": "Summarize the user's text in one sentence."},
                {"role": "user", "content": FIGURES},
            ],
            "Our Q3 revenue rose 12% to $4.2M, churn fell to 3% and we hired 14 engineers.",
        ),
        (
            f"TL;DR: {FIGURES}",
            "Our Q3 revenue rose 12% to $4.2M, churn fell to 3% and we hired 14 engineers.",
        ),
        (
            "Summarize the following text in 10 words:\nThe new firmware update fixes the Bluetooth pairing bug, "
            "improves battery life by about 15 percent and adds a dark mode to the companion app.",
            "The new firmware update fixes the Bluetooth pairing bug.",
        ),
        ("Hello!", "Hello! How can I help you today?"),
        (
            "Is this review about shipping or product quality? Review: The handle snapped off after a week.",
            "Product quality.",
        ),
    ],
)
def test_answers(messages: str | list, expected: str) -> None:
    assert _say(messages) == expected


def test_ideas_are_a_list_about_the_topic() -> None:
    lines = _say("Give me three ideas for blog posts about home composting.").splitlines()
    assert len(lines) == 3 and all(line.startswith(f"{i}. ") for i, line in enumerate(lines, 1))
    assert all("home composting" in line for line in lines)


def test_a_bare_question_is_not_summarized() -> None:
    answer = _say("What is the capital of France?")
    assert "capital of France?" not in answer and not answer.startswith("Summary:")
