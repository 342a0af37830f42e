"""SIGINT and SIGTERM as exceptions in the main thread, and a shield for cleanup.

``SignalGuard`` (a context manager, main thread only) turns SIGTERM into ``Terminated`` and
SIGINT into ``KeyboardInterrupt`` raised where the main thread is, so an ``ExitStack``
unwinds and heals. After ``shield()`` (called when cleanup begins) a further SIGINT or
SIGTERM no longer raises: it is counted and acknowledged on stderr, and cleanup goes on.
The previous handlers are restored on exit.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread like KeyboardInterrupt."""


class SignalGuard:
    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._shielded = False
        self.received: list[int] = []

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals can only be handled in the main thread; nothing to do
        for signum in HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @property
    def interrupted(self) -> bool:
        return bool(self.received)

    def shield(self) -> None:
        """From now on signals are acknowledged, not raised (cleanup must finish)."""
        self._shielded = True

    def unshield(self) -> None:
        self._shielded = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)
        name = signal.Signals(signum).name
        if self._shielded:
            sys.stderr.write(
                f"tradechaos: {name} received; still healing and stopping, please wait\n"
            )
            sys.stderr.flush()
            return
        self._shielded = True  # the first signal starts cleanup; later ones must not cut it
        if signum == signal.SIGTERM:
            raise Terminated(name)
        raise KeyboardInterrupt(name)
