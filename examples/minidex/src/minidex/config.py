"""Configuration from the environment: MINIDEX_* variables only, no command-line flags.

| variable | services | meaning (default) |
|---|---|---|
| MINIDEX_PORT | all | the HTTP port (required) |
| MINIDEX_HOST | all | the listen address (127.0.0.1) |
| MINIDEX_DB | all but devfeed | a postgresql:// DSN (required) |
| MINIDEX_SYMBOLS | engine, pricer, devfeed | symbols traded and priced, comma-separated (BTC-USD) |
| MINIDEX_VENUES | pricer | venue base URLs, comma-separated (required) |
| MINIDEX_VENUE_APIS | pricer | the API each venue speaks, see below (devfeed) |
| MINIDEX_QUOTE_GUARD | pricer | 1 = price only with sane quotes, see ``minidex.pricer`` (0) |
| MINIDEX_QUOTE_BAND_BPS | pricer | guard: leave out quotes farther from the median (500) |
| MINIDEX_MAINT_MARGIN | engine | maintenance margin ratio (0.02) |
| MINIDEX_MAX_MARK_AGE_MS | engine | no matching or liquidation on an older mark; 0 = off (0) |
| MINIDEX_DEDUPE | engine | 1 = a repeated (acct, cid) gets its first reply, not a new order (0) |
| MINIDEX_INSURANCE_ACCT | engine | takes what a liquidation cannot sell to the book (0) |
| MINIDEX_POLL_MS | engine, pricer | mark poll interval (100) |
| MINIDEX_SETTLE_MS | settler | settlement interval (500) |

MINIDEX_VENUE_APIS lists one entry per URL of MINIDEX_VENUES, in the same order (a single
entry applies to every URL): the API (``devfeed``, ``binance``, ``kraken``, ``coinbase``;
``minidex.venues``), then optionally ``:`` and the venue's names of minidex's symbols,
``SYMBOL=NAME`` joined by ``;``; a symbol not named there gets the exchange's usual name.
For example ``binance:BTC-USD=BTCUSDT,kraken:BTC-USD=XXBTZUSD,coinbase``.

``load`` ends the process with one sentence naming the variable (exit code 2) when a value
is missing or malformed.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from minidex.venues import APIS


class ConfigError(ValueError):
    """A variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class VenueApi:
    """How the pricer reads one venue: its API and the names MINIDEX_VENUE_APIS gives
    minidex's symbols there (the others get the exchange's usual name)."""

    api: str
    names: tuple[tuple[str, str], ...] = ()  # (minidex's symbol, the venue's name)


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    db: str
    symbols: tuple[str, ...]
    venues: tuple[str, ...]
    venue_apis: tuple[VenueApi, ...]  # one per venue URL
    quote_guard: bool
    quote_band: float  # a fraction of the median
    maint_margin: float
    max_mark_age_s: float  # 0: the guard is off
    dedupe: bool
    insurance_acct: int
    poll_s: float
    settle_s: float


def _number(env: Mapping[str, str], name: str, default: str, low: float = 0.0) -> float:
    raw = env.get(name, default).strip()
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= low or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= {low:g}, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "0").strip().lower()
    if raw in ("1", "true", "on", "yes"):
        return True
    if raw in ("0", "false", "off", "no", ""):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false, on/off), got {raw!r}")


def _list(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, default).split(",") if item.strip())


def _venue_apis(
    env: Mapping[str, str], venues: tuple[str, ...], symbols: tuple[str, ...]
) -> tuple[VenueApi, ...]:
    name = "MINIDEX_VENUE_APIS"
    entries = [e.strip() for e in (env.get(name, "").strip() or "devfeed").split(",")]
    if not all(entries):
        raise ConfigError(f"{name} has an empty entry: {env.get(name)!r}")
    if len(entries) == 1:
        entries = entries * len(venues)
    elif len(entries) != len(venues):
        raise ConfigError(f"{name} names {len(entries)} APIs for the {len(venues)} URLs of "
                          "MINIDEX_VENUES (one per URL, in order, or one for all)")  # fmt: skip
    result = []
    for entry in entries:
        api, _, pairs = entry.partition(":")
        if api not in APIS:
            raise ConfigError(f"{name}: unknown API {api!r} (known: {', '.join(APIS)})")
        names = []
        for pair in filter(None, (p.strip() for p in pairs.split(";"))):
            sym, sep, own = (part.strip() for part in pair.partition("="))
            if not sep or not sym or not own:
                raise ConfigError(f"{name}: {pair!r} is not SYMBOL=NAME")
            if sym not in symbols:
                raise ConfigError(f"{name}: {sym!r} is not one of MINIDEX_SYMBOLS "
                                  f"({', '.join(symbols)})")  # fmt: skip
            names.append((sym, own))
        result.append(VenueApi(api, tuple(names)))
    return tuple(result)


def from_env(env: Mapping[str, str], required: tuple[str, ...] = ("MINIDEX_DB",)) -> Settings:
    """The settings in ``env``; raises ConfigError naming the first bad variable."""
    for name in ("MINIDEX_PORT", *required):
        if not env.get(name, "").strip():
            raise ConfigError(f"{name} is not set")
    port = _number(env, "MINIDEX_PORT", "0", low=1)
    if port != int(port) or port > 65535:
        raise ConfigError(f"MINIDEX_PORT must be a port number, got {env['MINIDEX_PORT']!r}")
    db = env.get("MINIDEX_DB", "").strip()
    if db and not db.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"MINIDEX_DB must be a postgresql:// DSN, got {db!r}")
    symbols = _list(env, "MINIDEX_SYMBOLS", "BTC-USD")
    if not symbols:
        raise ConfigError("MINIDEX_SYMBOLS names no symbol")
    venues = _list(env, "MINIDEX_VENUES", "")
    if "MINIDEX_VENUES" in required and not venues:
        raise ConfigError("MINIDEX_VENUES names no venue URL")
    bad = [v for v in venues if not v.startswith(("http://", "https://"))]
    if bad:
        raise ConfigError(f"MINIDEX_VENUES must hold http:// URLs, got {bad[0]!r}")
    insurance = _number(env, "MINIDEX_INSURANCE_ACCT", "0")
    if insurance != int(insurance):
        raise ConfigError("MINIDEX_INSURANCE_ACCT must be an account number")
    return Settings(
        host=env.get("MINIDEX_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=int(port),
        db=db,
        symbols=symbols,
        venues=venues,
        venue_apis=_venue_apis(env, venues, symbols),
        quote_guard=_flag(env, "MINIDEX_QUOTE_GUARD"),
        quote_band=_number(env, "MINIDEX_QUOTE_BAND_BPS", "500", low=1) / 10_000.0,
        maint_margin=_number(env, "MINIDEX_MAINT_MARGIN", "0.02"),
        max_mark_age_s=_number(env, "MINIDEX_MAX_MARK_AGE_MS", "0") / 1000.0,
        dedupe=_flag(env, "MINIDEX_DEDUPE"),
        insurance_acct=int(insurance),
        poll_s=_number(env, "MINIDEX_POLL_MS", "100", low=1) / 1000.0,
        settle_s=_number(env, "MINIDEX_SETTLE_MS", "500", low=1) / 1000.0,
    )


def load(service: str, required: tuple[str, ...] = ("MINIDEX_DB",)) -> Settings:
    """The settings of ``service`` from ``os.environ``, logging set up; exit 2 if bad."""
    logging.basicConfig(
        level=os.environ.get("MINIDEX_LOG_LEVEL", "INFO").upper(),
        stream=sys.stderr,
        format=f"%(asctime)s minidex.{service} %(levelname)s %(message)s",
    )
    try:
        return from_env(os.environ, required)
    except ConfigError as err:
        print(f"minidex.{service}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
