"""Reading ahead: a reader thread fetches the next pages while the caller writes the current ones.

A fetch waits on the network and on Assignar; a write waits on the database. Done one after the
other, a long import pays both in full; with a reader thread, the slower of the two.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

#: How often a blocked reader looks whether the caller has gone (seconds).
_POLL = 0.1


def read_ahead(items: Iterator[T], ahead: int = 1) -> Iterator[T]:
    """Yield what `items` yields, in order, produced by a reader thread up to `ahead` items early.

    An exception raised by `items` reaches the caller at the point it was raised, after the items
    before it. If the caller stops early (it failed, or closed this generator), the reader stops
    after the item it is fetching; it is not waited for, so that a failure is reported without
    sitting out a fetch's retries. `items` must be safe to advance from another thread
    (`AssignarClient` is thread-safe).
    """
    if ahead < 1:
        raise ValueError("ahead must be at least 1")
    handoff: queue.Queue[tuple[bool, T | BaseException | None]] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(entry: tuple[bool, T | BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            put((False, exc))
        else:
            put((False, None))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # a generator's cleanup runs in the thread that advanced it

    reader = threading.Thread(target=read, name="read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            more, value = handoff.get()
            if more:
                yield value  # type: ignore[misc]
            elif value is not None:
                raise value  # type: ignore[misc]
            else:
                return
    finally:
        stop.set()
