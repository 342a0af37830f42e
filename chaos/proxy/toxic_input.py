"""Toxics from API bodies, checked in the order Toxiproxy 2.12.0 checks them.

Create (``POST /proxies/{name}/toxics``): the body's fields and their JSON types, then
``stream`` (``upstream`` or ``downstream``, any case), then the default name
(``<type>_<stream>``), then the type, then the name's uniqueness (409), then the
attributes (JSON integers; ``null`` or absent: 0), then tradechaos's own refusals.
Update (``POST``/``PATCH /proxies/{name}/toxics/{toxic}``): ``attributes`` are merged into
the current ones and ``toxicity`` replaces it; other fields are ignored except a ``stream``
other than the toxic's own, which is refused. A refused update changes nothing.

Deliberate differences from Toxiproxy (docs/proxy.md): a negative bandwidth ``rate`` and a
negative slicer ``average_size`` are refused (the real server crashes or never delivers
with them), and so is an update that names another stream (the real one ignores it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from chaos.proxy.body import (
    MISSING,
    BodyError,
    JsonObject,
    as_object,
    float32_field,
    int64_value,
    string_field,
)
from chaos.proxy.toxics import STREAMS, TOXIC_TYPES, Toxic


class ToxicInputError(ValueError):
    """API input for a toxic is refused; ``str(err)`` is the error text, ``status`` its code."""

    status = 400


class InvalidStream(ToxicInputError):
    def __init__(self) -> None:
        super().__init__("stream was invalid, can be either upstream or downstream")


class UnknownToxicType(ToxicInputError):
    def __init__(self) -> None:
        super().__init__("invalid toxic type")


class ToxicExists(ToxicInputError):
    status = 409

    def __init__(self) -> None:
        super().__init__("toxic already exists")


#: (type, attribute) pairs that must not be negative, and why (docs/proxy.md).
NOT_NEGATIVE = {
    ("bandwidth", "rate"): "Toxiproxy 2.12.0 crashes on a negative rate",
    ("slicer", "average_size"): "Toxiproxy 2.12.0 never delivers with a negative size",
}


def _attributes_value(obj: JsonObject) -> JsonObject | None:
    value = obj.field("attributes")
    if value is MISSING or value is None:
        return None
    if not isinstance(value, JsonObject):
        raise BodyError("attributes must be a JSON object")
    return value


def parse_attributes(
    type_name: str, given: JsonObject | None, base: Mapping[str, int] | None = None
) -> dict[str, int]:
    """``base`` (or zeros) updated with the attributes of ``type_name`` found in ``given``."""
    names = TOXIC_TYPES[type_name]
    result = {name: 0 for name in names} if base is None else dict(base)
    for key, value in given or ():
        match = next((name for name in names if name.casefold() == key.casefold()), None)
        if match is not None and value is not None:
            result[match] = int64_value(value, f"{type_name} attribute {match!r}")
    for (refused_type, name), why in NOT_NEGATIVE.items():
        if refused_type == type_name and result[name] < 0:
            raise ToxicInputError(f"{type_name} attribute {name!r} must not be negative ({why})")
    return result


def parse_toxic(body: object, taken: Collection[str]) -> Toxic:
    """A new ``Toxic`` from a create body; ``taken`` holds the proxy's toxic names."""
    obj = as_object(body, "a toxic")
    name = string_field(obj, "name", "")
    type_name = string_field(obj, "type", "")
    stream = string_field(obj, "stream", "downstream")
    toxicity = float32_field(obj, "toxicity", 1.0)
    attributes = _attributes_value(obj)
    if stream.lower() not in STREAMS:
        raise InvalidStream()
    name = name or f"{type_name}_{stream}"
    if type_name not in TOXIC_TYPES:
        raise UnknownToxicType()
    if name in taken:
        raise ToxicExists()
    parsed = parse_attributes(type_name, attributes)
    return Toxic(name, type_name, stream, STREAMS.index(stream.lower()), toxicity, parsed)


def parse_update(old: Toxic, body: object) -> tuple[float, dict[str, int]]:
    """The toxicity and attributes that an update body gives ``old`` (unchanged if absent)."""
    obj = as_object(body, "a toxic update")
    toxicity = float32_field(obj, "toxicity", old.toxicity)
    attributes = _attributes_value(obj)
    stream = obj.field("stream")
    if (
        stream is not MISSING
        and stream is not None
        and (not isinstance(stream, str) or stream.lower() != STREAMS[old.direction])
    ):
        raise ToxicInputError(
            f"toxic {old.name} is on the {STREAMS[old.direction]} stream, which an update "
            "cannot change (remove it and add it on the other stream)"
        )
    return toxicity, parse_attributes(old.type, attributes, old.attributes)
