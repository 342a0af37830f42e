"""Durations as written in experiment files: ``250ms``, ``5s``, ``2m``, ``1h`` or a plain
number of seconds. Parsed to float seconds; anything else raises ``ValueError`` with one
sentence saying what is allowed."""

from __future__ import annotations

import math
import re

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
ALLOWED = "a duration like 250ms, 5s, 2m, 1h or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds for ``value``; ``ValueError`` when it is not a finite, non-negative duration."""
    if isinstance(value, bool):
        raise ValueError(f"expected {ALLOWED}, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise ValueError(f"expected {ALLOWED}, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected {ALLOWED}, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"expected {ALLOWED} (finite, not negative), got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short human form: ``250ms``, ``5s``, ``2.5s``, ``2m``."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
