"""OpenAI clients built from an Airflow connection through the provider's ``OpenAIHook``.

The triggerer runs every deferred wait on one event loop, so async clients are shared per
(connection, loop): a thousand waits then use one connection pool instead of a thousand. Keys
never leave the client: nothing here logs a client or its arguments, and :func:`redact` scrubs
key-like strings from error text before it reaches a log, an event or XCom.
"""

from __future__ import annotations

import asyncio
import re
import weakref

from airflow.providers.openai.hooks.openai import OpenAIHook
from openai import AsyncOpenAI, OpenAI

DEFAULT_CONN_ID = "openai_default"

# Per loop, because an httpx pool and an asyncio.Lock both belong to the loop that first used them.
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncOpenAI]] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

_KEY_LIKE = re.compile(r"\b(sk-|Bearer\s+)[A-Za-z0-9_\-*.]{6,}")


async def shared_async_client(conn_id: str = DEFAULT_CONN_ID) -> AsyncOpenAI:
    """The one ``AsyncOpenAI`` client of this connection on the running loop, created on first use."""
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    if (client := clients.get(conn_id)) is not None:
        return client
    async with _locks.setdefault(loop, asyncio.Lock()):
        if (client := clients.get(conn_id)) is None:
            client = clients[conn_id] = await OpenAIHook(conn_id=conn_id).aget_conn()
    return client


def discard_shared_async_client(conn_id: str, client: AsyncOpenAI) -> None:
    """Drop ``client`` from the cache (if still cached) so the next call re-reads the connection.

    Used after a 401: the key may have been rotated in the connection since the client was built.
    The old client is not closed here, because other waits may still be using it.
    """
    clients = _clients.get(asyncio.get_running_loop(), {})
    if clients.get(conn_id) is client:
        del clients[conn_id]


async def close_shared_async_clients() -> None:
    """Close and forget the running loop's shared clients (tests, and tidy shutdowns)."""
    clients = _clients.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.close()


def sync_client(conn_id: str = DEFAULT_CONN_ID) -> OpenAI:
    """A new synchronous client for worker-side calls (a sensor's check, cancel on kill)."""
    return OpenAIHook(conn_id=conn_id).get_conn()


def redact(text: str) -> str:
    """Mask anything that looks like an API key or bearer token in ``text``."""
    return _KEY_LIKE.sub(lambda match: f"{match.group(1)}***", text)
