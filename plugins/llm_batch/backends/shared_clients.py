"""Async SDK clients, and reads under way, shared per (connection, event loop).

The triggerer runs every deferred wait on one event loop, so a thousand waits on one connection
share one client and its connection pool instead of opening a thousand, and a thousand waits
that start together (a triggerer restart) read their connection once. Per loop, because an
httpx pool, an ``asyncio.Lock`` and a task all belong to the loop that made them.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

C = TypeVar("C")

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = weakref.WeakKeyDictionary()
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)
_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task]] = (
    weakref.WeakKeyDictionary()
)


async def shared_async_client(key: str, build: Callable[[], Awaitable[C]]) -> C:
    """The running loop's client for ``key`` (provider and connection id), built on first use."""
    loop = asyncio.get_running_loop()
    clients = _clients.setdefault(loop, {})
    if (client := clients.get(key)) is not None:
        return client
    # A lock per key: one client's build may need another's (a status reader is made from its SDK client).
    async with _locks.setdefault(loop, {}).setdefault(key, asyncio.Lock()):
        if (client := clients.get(key)) is None:
            client = clients[key] = await build()
    return client


async def shared_read(key: str, read: Callable[[], Awaitable[C]]) -> C:
    """``read()``, made once for all the callers on the running loop that ask for ``key`` while it
    is under way. Nothing is kept once it ends: the next caller reads anew (a rotated key shows).

    Why: 5,000 waits starting at once each read their connection through Airflow's one
    thread for sync-to-async calls, one after the other, which delayed the last waits' first look
    by seconds.
    """
    loop = asyncio.get_running_loop()
    reads = _reads.setdefault(loop, {})
    if (task := reads.get(key)) is None:
        task = reads[key] = loop.create_task(read())

        def ended(done: asyncio.Task) -> None:
            if reads.get(key) is done:
                del reads[key]
            if not done.cancelled():
                done.exception()  # seen by its callers; not "never retrieved" if they were cancelled

        task.add_done_callback(ended)
    # A caller cancelled (its wait cleared) does not cancel the read the others await.
    return await asyncio.shield(task)


def discard_shared_async_client(key: str, client: object) -> None:
    """Forget ``client`` (if still the shared one) so that the next call reads the connection again.

    Not closed here: other waits may still be using it.
    """
    clients = _clients.get(asyncio.get_running_loop(), {})
    if clients.get(key) is client:
        del clients[key]


def shared_async_clients() -> dict[str, Any]:
    """The running loop's shared clients by key (read-only use: tests and diagnostics)."""
    return dict(_clients.get(asyncio.get_running_loop(), {}))


async def close_shared_async_clients() -> None:
    """Close and forget the running loop's shared clients (tests, and tidy shutdowns)."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.close()
