"""Request bodies read the way Toxiproxy's server reads them (Go's ``encoding/json``).

Facts about the real server that clients rely on, and that ``decode`` and ``JsonObject``
reproduce:
- only the first JSON value of a body counts (trailing bytes are ignored); an empty body
  is the error ``EOF``; ``NaN`` and ``Infinity`` are not JSON;
- an object's keys match field names case-insensitively, and when several keys match one
  field the last one wins; keys that match no field are ignored;
- ``null`` for a field leaves it as it was (its default on create, its value on update).

Errors raise ``BodyError``; its text follows ``"bad request body: "`` in the API's answer.
The texts are ours (Go's name Go types); the status, 400, is Toxiproxy's.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Iterator
from typing import Final

MISSING: Final = object()

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
FLOAT32_MAX = 3.4028234663852886e38


class BodyError(ValueError):
    """The body is not what the route reads; ``str(err)`` follows ``bad request body: ``."""


class JsonObject:
    """A JSON object as its (key, value) pairs, in document order (duplicates kept)."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: Iterable[tuple[str, object]] = ()) -> None:
        self.pairs = list(pairs)

    def __iter__(self) -> Iterator[tuple[str, object]]:
        return iter(self.pairs)

    def __repr__(self) -> str:
        return f"JsonObject({self.pairs!r})"

    def field(self, name: str) -> object:
        """The value of the last key that equals ``name`` ignoring case, else ``MISSING``."""
        folded = name.casefold()
        for key, value in reversed(self.pairs):
            if key.casefold() == folded:
                return value
        return MISSING


def _no_constants(name: str) -> object:
    raise BodyError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(object_pairs_hook=JsonObject, parse_constant=_no_constants)


def decode(raw: bytes) -> object:
    """The first JSON value in ``raw`` (objects as ``JsonObject``); BodyError if none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BodyError(f"the body is not UTF-8 ({err.reason} at byte {err.start})") from err
    text = text.lstrip(" \t\r\n")
    if not text:
        raise BodyError("EOF")
    try:
        value, _ = _DECODER.raw_decode(text)
    except json.JSONDecodeError as err:
        raise BodyError(f"{err.msg} at character {err.pos + 1}") from err
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, JsonObject):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return repr(value)


def as_object(value: object, what: str) -> JsonObject:
    """``value`` as an object (``null`` reads as ``{}``, as Go reads it into a struct)."""
    if value is None:
        return JsonObject()
    if not isinstance(value, JsonObject):
        raise BodyError(f"{what} must be a JSON object, not {_kind(value)}")
    return value


def string_field(obj: JsonObject, name: str, current: str) -> str:
    value = obj.field(name)
    if value is MISSING or value is None:
        return current
    if not isinstance(value, str):
        raise BodyError(f"{name} must be a string, not {_kind(value)}")
    return value


def bool_field(obj: JsonObject, name: str, current: bool) -> bool:
    value = obj.field(name)
    if value is MISSING or value is None:
        return current
    if not isinstance(value, bool):
        raise BodyError(f"{name} must be true or false, not {_kind(value)}")
    return value


def float32_field(obj: JsonObject, name: str, current: float) -> float:
    """A number, rounded to the float32 that Toxiproxy stores (``toxicity``)."""
    value = obj.field(name)
    if value is MISSING or value is None:
        return current
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BodyError(f"{name} must be a number, not {_kind(value)}")
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise BodyError(f"{name} {value!r} is out of range")
    return float32(float(value))


def int64_value(value: object, name: str) -> int:
    """A JSON integer (no fraction, no exponent, as Go decodes into int64)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BodyError(f"{name} must be a whole number, not {_kind(value)}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise BodyError(f"{name} {value} is out of range")
    return value


def float32(value: float) -> float:
    """``value`` rounded to float32, as the shortest decimal that denotes that float32."""
    single = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if struct.unpack("f", struct.pack("f", shortest))[0] == single:
            return shortest
    return float(single)
