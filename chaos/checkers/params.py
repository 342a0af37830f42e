"""Tolerances of the checkers: explicit, documented, settable per experiment.

See docs/checkers.md for what each one means and why its default is what it is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class CheckParams:
    """Tolerances shared by all checkers. All are >= 0; ``max_counterexamples`` >= 1."""

    margin_tolerance: float = 0.05  # liquidation intended if equity < maint * (1 + this)
    price_lag_s: float = 2.0  # ... at any instant of [t - this, t]
    band_bps: float = 500.0  # non-normal-mode fills within +-this of the true price
    stale_after_s: float = 5.0  # oracle price older than this at execution is stale
    rto_s: float = 10.0  # trading must resume within this after a node loss
    funding_tolerance: float = 0.02  # on-chain funding index vs truth, relative
    price_tolerance: float = 0.05  # on-chain mark price vs truth, relative
    harm_off_market_bps: float = 500.0  # harm ledger: a fill this far from truth is harm
    max_counterexamples: int = 5

    DEFAULTS: ClassVar[Mapping[str, float | int]]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> CheckParams:
        """Defaults overridden by ``mapping``; raises ValueError naming a bad or unknown key."""
        known = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, Any] = {}
        for key, raw in (mapping or {}).items():
            if key not in known:
                raise ValueError(f"unknown check parameter {key!r} (known: {', '.join(known)})")
            if isinstance(raw, bool) or not isinstance(raw, int | float):
                raise ValueError(f"check parameter {key!r} must be a number, got {raw!r}")
            if not math.isfinite(raw) or raw < 0:
                raise ValueError(f"check parameter {key!r} must be finite and >= 0, got {raw!r}")
            if key == "max_counterexamples":
                if int(raw) != raw or raw < 1:
                    raise ValueError(f"check parameter {key!r} must be an integer >= 1")
                values[key] = int(raw)
            else:
                values[key] = float(raw)
        return cls(**values)

    def to_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)


CheckParams.DEFAULTS = CheckParams().to_dict()
