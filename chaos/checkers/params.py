"""Tolerances of the checkers: explicit, documented, settable per experiment.

See docs/checkers.md for what each one means and why its default is what it is.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

# The venues' quote noise is within +-0.02% of the true price (chaos.world.venue_noise).
VENUE_NOISE_BPS = 2.0
# The widest band a fill may be from the true price in any trading mode before it is
# off-market, unless the experiment's own band is wider: the +-5% price-range protection
# operators announce, and the 5% a liquidation may sweep a thin book (docs/checkers.md).
OFF_MARKET_FLOOR_BPS = 500.0
# Parameters whose value may be null: "derived from the others" (docs/checkers.md).
DERIVED = frozenset({"off_market_bps"})


@dataclass(frozen=True)
class CheckParams:
    """Tolerances shared by all checkers. All are >= 0; ``max_counterexamples`` >= 1;
    ``off_market_bps`` None means derived (``off_market_tolerance_bps``)."""

    margin_tolerance: float = 0.05  # liquidation intended if equity < maint * (1 + this)
    price_lag_s: float = 2.0  # ... at any instant of [t - this, t]
    band_bps: float = 500.0  # non-normal-mode fills within +-this of the true price
    stale_after_s: float = 5.0  # oracle price older than this at execution is stale
    rto_s: float = 10.0  # trading must resume within this after a node loss
    funding_tolerance: float = 0.02  # on-chain funding index vs truth, relative
    price_tolerance: float = 0.05  # on-chain mark price vs truth, relative
    harm_off_market_bps: float = 500.0  # harm ledger: a fill this far from truth is harm
    max_counterexamples: int = 5
    off_market_bps: float | None = None  # any fill within this of the true price range

    DEFAULTS: ClassVar[Mapping[str, float | int | None]]

    @property
    def off_market_tolerance_bps(self) -> float:
        """How far (bps) a fill may be from the true price range of [t - price_lag_s, t]:
        ``off_market_bps`` when set, else the band (never less than 500 bps) plus the
        venues' quote noise: 502 bps by default."""
        if self.off_market_bps is not None:
            return self.off_market_bps
        return max(self.band_bps, OFF_MARKET_FLOOR_BPS) + VENUE_NOISE_BPS

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> CheckParams:
        """Defaults overridden by ``mapping``; raises ValueError naming a bad or unknown key."""
        known = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, Any] = {}
        for key, raw in (mapping or {}).items():
            if key not in known:
                raise ValueError(f"unknown check parameter {key!r} (known: {', '.join(known)})")
            if raw is None and key in DERIVED:
                values[key] = None
                continue
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

    def to_dict(self) -> dict[str, float | int | None]:
        return dataclasses.asdict(self)


CheckParams.DEFAULTS = CheckParams().to_dict()
