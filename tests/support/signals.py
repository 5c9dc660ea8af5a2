"""Turns SIGTERM into KeyboardInterrupt so that a cancelled test session still runs its teardown."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # One interrupt is enough: a second SIGTERM (e.g. `uv run` forwarding the one its process
    # group already got) would otherwise land in the middle of the teardown it is waiting for.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt(f"received signal {signum}")


@contextlib.contextmanager
def sigterm_raises_keyboard_interrupt() -> Iterator[None]:
    """While active, SIGTERM (what CI sends on cancel) behaves like Ctrl-C.

    Python's default SIGTERM action ends the process at once, skipping fixture teardown, which
    would leave servers started by the tests running. Ctrl-C already unwinds through pytest's
    teardown, so SIGTERM is mapped onto it. A handler somebody else installed is left alone.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def restore_ctrl_c() -> None:
    """Give SIGINT its default handler when the session started with it ignored (a background job
    of a shell without job control). Dagster maps SIGTERM onto SIGINT's handler while it runs a
    job, so SIGTERM would become ignored in this process too, and every server a later test
    starts would inherit that and could be stopped only by SIGKILL."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
