"""The mitigation switches of the reference stack: each one a guard an operator announced
after an incident. A vulnerable configuration is the same code with guards off."""

from __future__ import annotations

MITIGATIONS: tuple[str, ...] = (
    "readiness_gates",
    "data_validation",
    "post_only_band",
    "staleness_guard",
    "idempotency_keys",
    "fencing",
    "auto_failover",
)


def parse_mitigations(spec: str) -> frozenset[str]:
    """``"all"`` -> every switch, ``"none"`` or ``""`` -> no switch, ``"a,b"`` -> those.

    Raises ``ValueError`` naming the unknown switch and the known ones.
    """
    text = spec.strip().lower()
    if text == "all":
        return frozenset(MITIGATIONS)
    if text in ("none", ""):
        return frozenset()
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in MITIGATIONS]
    if unknown:
        raise ValueError(
            f"unknown mitigation {unknown[0]!r} (known: all, none, {', '.join(MITIGATIONS)})"
        )
    return frozenset(names)
