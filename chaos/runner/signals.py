"""SIGINT and SIGTERM as exceptions in the main thread, and a shield for cleanup.

``SignalGuard`` (a context manager, main thread only) turns SIGTERM into ``Terminated`` and
SIGINT into ``KeyboardInterrupt`` raised where the main thread is, so an ``ExitStack``
unwinds and heals. After ``shield()`` (called when cleanup begins) a further SIGINT or
SIGTERM no longer raises: it is counted and acknowledged on stderr, and cleanup goes on.
The previous handlers are restored on exit.

An exception raised by a signal handler lands wherever the main thread is. A few places
must not be cut in half: the at-fork handlers of ``logging`` (an exception there is
swallowed and leaves the logging lock held, which deadlocks every later fork) and
``subprocess`` while it starts a child (the child would be started but not owned). When
the signal lands there, it is delivered again to the main thread ``REDELIVER_S`` later.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)
REDELIVER_S = 0.02
_UNSAFE_FUNCTIONS = frozenset({"_acquireLock", "_releaseLock", "_at_fork_reinit"})
_UNSAFE_SUBPROCESS = frozenset({"__init__", "_execute_child"})


def _unsafe(frame: FrameType | None) -> bool:
    """True when the main thread is inside code that must not be interrupted."""
    depth = 0
    while frame is not None and depth < 40:
        code = frame.f_code
        if (
            code.co_name in _UNSAFE_FUNCTIONS
            or code.co_filename.endswith("logging/__init__.py")
            or (code.co_filename.endswith("/subprocess.py") and code.co_name in _UNSAFE_SUBPROCESS)
        ):
            return True
        frame = frame.f_back
        depth += 1
    return False


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
        if not self._shielded and _unsafe(frame):
            timer = threading.Timer(
                REDELIVER_S, signal.pthread_kill, (threading.main_thread().ident, signum)
            )
            timer.daemon = True
            timer.start()
            return
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
