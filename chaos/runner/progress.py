"""Progress lines on stderr while a run is under way: one per second and one per event.

A line: ``[name/variant] method 12.0/40.0s | faults: restart-1 | load 18.5 rps``. With
``quiet`` nothing is printed. The ticker is a daemon thread stopped by ``close()``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(self, label: str, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.label = label
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.phase = "starting"
        self.total_s: float | None = None
        self._phase_started = time.monotonic()
        self.active: Callable[[], list[str]] = list
        self.rps: Callable[[], float | None] = lambda: None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start_ticker(self, interval_s: float = 1.0) -> None:
        if self.quiet or self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._tick, args=(interval_s,), name="progress", daemon=True
        )
        self._thread.start()

    def set_phase(self, phase: str, total_s: float | None = None) -> None:
        self.phase = phase
        self.total_s = total_s
        self._phase_started = time.monotonic()
        self.event(phase)

    def event(self, text: str) -> None:
        self._write(f"[{self.label}] {text}")

    def status_line(self) -> str:
        elapsed = time.monotonic() - self._phase_started
        clock = f"{elapsed:.1f}/{self.total_s:.1f}s" if self.total_s else f"{elapsed:.1f}s"
        parts = [f"[{self.label}] {self.phase} {clock}"]
        try:
            active = self.active()
            rps = self.rps()
        except Exception:
            active, rps = [], None
        parts.append(f"faults: {', '.join(active) if active else '-'}")
        parts.append(f"load {rps:.1f} rps" if rps is not None else "load -")
        return " | ".join(parts)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def _tick(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self._write(self.status_line())

    def _write(self, line: str) -> None:
        if self.quiet:
            return
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass
