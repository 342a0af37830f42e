"""The pricer (minidex's oracle): the median of the venues' quotes, written to ``marks``.

``python -m minidex.pricer`` with MINIDEX_PORT, MINIDEX_DB, MINIDEX_SYMBOLS, MINIDEX_VENUES
(base URLs) and MINIDEX_VENUE_APIS (the API each one speaks: ``minidex.venues``).

Every MINIDEX_POLL_MS every venue is asked for every symbol in its own API (1 s timeout
each); a venue that fails, times out or answers an error gives no quote that round. Per
symbol the median of the quotes becomes one ``marks`` row (``inputs``: the quotes it was
the median of), ``at`` = when it was published. Nothing is kept across restarts: a pricer
that is down simply publishes nothing. Serves only ``GET /healthz``.

The quote guard (MINIDEX_QUOTE_GUARD=1; off by default): a quote is used only when its
price is a positive number and its book is not crossed (bid <= ask), and, of those, only
when it lies within MINIDEX_QUOTE_BAND_BPS of their median. A symbol left without a usable
quote gets no mark that round (the engine keeps the last one). With the guard off every
quote is used as the venue sent it: when more than half of the venues answer zeros, the
median is zero, and so is the mark (when half of them do, half the price).
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from minidex import venues
from minidex.config import Settings, load
from minidex.db import Db
from minidex.venues import Quote, Request, VenueError
from minidex.web import background, every, reply, serve

log = logging.getLogger("minidex.pricer")


def unfit(quote: Quote) -> str | None:
    """Why the quote guard leaves ``quote`` out on its own, or None."""
    if quote.px <= 0:
        return f"price {quote.px:g}"
    if quote.bid is not None and quote.ask is not None and not 0 < quote.bid <= quote.ask:
        return f"book bid {quote.bid:g} ask {quote.ask:g}"
    return None


def mark_prices(
    quotes: Sequence[Quote], guard: bool = False, band: float = 0.05
) -> tuple[dict[str, tuple[float, list[float]]], list[str]]:
    """Per symbol, the median of the quotes used and those quotes; and, with the ``guard``,
    each quote it left out and why (``band``: the largest distance from the median of the
    fit quotes, as a fraction of it)."""
    by_sym: dict[str, list[Quote]] = {}
    for quote in quotes:
        by_sym.setdefault(quote.sym, []).append(quote)
    marks: dict[str, tuple[float, list[float]]] = {}
    left_out: list[str] = []
    for sym, listed in by_sym.items():
        used = listed
        if guard:
            used = []
            for quote in listed:
                why = unfit(quote)
                if why is None:
                    used.append(quote)
                else:
                    left_out.append(f"{sym} from venue {quote.source}: {why}")
            if used:
                middle = statistics.median(q.px for q in used)
                far = [q for q in used if abs(q.px - middle) > band * middle]
                for q in far:
                    off = abs(q.px / middle - 1)
                    left_out.append(f"{sym} from venue {q.source}: {q.px:g}, {off:.1%} off")
                used = [q for q in used if q not in far]
        if used:
            prices = [q.px for q in used]
            marks[sym] = (statistics.median(prices), prices)
    return marks, left_out


class Pricer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Db(settings.db, "pricer", timeout_s=2.0)
        self.session: aiohttp.ClientSession | None = None
        self.published = 0
        self.left_out = 0  # quotes the guard left out
        self.venue_errors = 0  # answers holding no quote
        self.last_at: float | None = None
        self._leaving_out: set[str] = set()  # venues/symbols left out in the last round
        self.venues: list[tuple[str, str, dict[str, str]]] = []  # (URL, API, symbol -> name)
        for url, spec in zip(settings.venues, settings.venue_apis, strict=True):
            symbols = venues.names(spec.api, settings.symbols, dict(spec.names))
            self.venues.append((url.rstrip("/"), spec.api, symbols))

    async def get(self, url: str, asked: Request) -> tuple[int, Any] | None:
        """(HTTP status, the decoded JSON body or None) or None when nothing came back."""
        assert self.session is not None
        try:
            async with self.session.get(url + asked.path, params=dict(asked.query)) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            log.debug("venue %s: %s", url, err)
            return None
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, None

    async def fetch(self, index: int) -> list[Quote]:
        """The quotes venue ``index`` gives this round (none when it fails)."""
        url, api, symbols = self.venues[index]
        asks = venues.request(api, symbols)
        answers = await asyncio.gather(*(self.get(url, asked) for asked in asks))
        quotes: list[Quote] = []
        for number, answer in enumerate(answers):
            if answer is None:
                continue
            try:
                quotes += venues.read(api, answer[0], answer[1], symbols, str(index), number)
            except VenueError as err:
                self.venue_errors += 1
                log.debug("venue %d (%s, %s): %s", index, api, url, err)
        return quotes

    async def step(self) -> None:
        found = await asyncio.gather(*(self.fetch(i) for i in range(len(self.venues))))
        quotes = [quote for listed in found for quote in listed]
        s = self.settings
        marks, left_out = mark_prices(quotes, s.quote_guard, s.quote_band)
        self._report(left_out)
        if not marks:
            return
        at = time.time()
        rows = [
            (m, px, datetime.fromtimestamp(at, UTC), json.dumps(q)) for m, (px, q) in marks.items()
        ]

        async def write(conn: Any) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO marks (sym, px, at, inputs) VALUES (%s, %s, %s, %s)", rows
                )

        await self.db.run(write)
        self.published += len(rows)
        self.last_at = at

    def _report(self, left_out: list[str]) -> None:
        """Count what the guard left out; log it when the venues left out change."""
        self.left_out += len(left_out)
        leaving = {why.partition(":")[0] for why in left_out}
        if leaving != self._leaving_out:
            if left_out:
                log.warning("quote guard left out %s", "; ".join(left_out))
            else:
                log.info("quote guard: every quote is fit again")
            self._leaving_out = leaving

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.session = session
            await every(self.settings.poll_s, self.step, "pricing round")

    async def healthz(self, _request: web.Request) -> web.Response:
        age = None if self.last_at is None else round(time.time() - self.last_at, 3)
        body = {"ok": True, "published": self.published, "last_age_s": age,
                "left_out": self.left_out, "venue_errors": self.venue_errors}  # fmt: skip
        return reply(body)


def build_app(settings: Settings) -> web.Application:
    pricer = Pricer(settings)
    app = web.Application()
    app.add_routes([web.get("/healthz", pricer.healthz)])
    app.cleanup_ctx.append(background(pricer.run))
    app["pricer"] = pricer
    return app


def main() -> None:
    settings = load("pricer", required=("MINIDEX_DB", "MINIDEX_VENUES"))
    serve(build_app(settings), settings, "pricer")


if __name__ == "__main__":
    main()
