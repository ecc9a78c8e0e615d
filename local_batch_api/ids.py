"""Object ids in OpenAI's and Anthropic's formats, and the strict check that keeps path-like ids off the disk."""

from __future__ import annotations

import re
import secrets

_FILE_ID = re.compile(r"^file-[A-Za-z0-9]{8,64}$")
_BATCH_ID = re.compile(r"^batch_[A-Za-z0-9]{8,64}$")
_MESSAGE_BATCH_ID = re.compile(r"^msgbatch_[A-Za-z0-9]{8,64}$")


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


def new_message_batch_id() -> str:
    """Anthropic's Message Batch ids."""
    return "msgbatch_" + secrets.token_hex(12)


def new_request_id() -> str:
    return "req_" + secrets.token_hex(16)


def is_file_id(value: str) -> bool:
    return bool(_FILE_ID.match(value))


def is_batch_id(value: str) -> bool:
    return bool(_BATCH_ID.match(value))


def is_message_batch_id(value: str) -> bool:
    return bool(_MESSAGE_BATCH_ID.match(value))
