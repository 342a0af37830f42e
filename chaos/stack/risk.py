"""The risk engine: liquidates accounts whose equity fell below maintenance margin.

``python -m chaos.stack.risk --port P --db H:P --oracle H:P --sequencer H:P [--standby H:P]``

Every 200 ms: prices from the oracle (``GET /prices``); when the oracle is unreachable, the
newest ``oracle_prices`` row per market from the db (the dYdX stale-price mechanism).
Positions and collateral from the db; equity and maintenance by ``chaos.world.equity``.
An account below maintenance gets one ``POST /liquidations`` per open position, to the
primary sequencer, then the standby on failure. The insurance fund (account 0) is exempt.

Guards: ``staleness_guard`` (no liquidation on a price older than ``--stale-after``);
``readiness_gates`` (no liquidation before a fresh price came from the oracle itself).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web

from chaos.builtins.web import json_response, serve
from chaos.stack.common import NEWEST_ORACLE_PRICES_SQL, Pg, base_parser, every, parse_args, spawn
from chaos.world import MARKET_NAMES, equity

log = logging.getLogger("chaos.stack.risk")
INSURANCE_FUND = 0
RETRY_AFTER_S = 1.0  # do not liquidate the same account again before the db shows the result


class Risk:
    def __init__(self, args: Any) -> None:
        self.args = args
        self.mitigations: frozenset[str] = args.mitigations
        self.db = Pg(args.db, "risk", timeout_s=2.0)
        self.sequencers = [f"http://{args.sequencer}"] + (
            [f"http://{args.standby}"] if args.standby else []
        )
        self.oracle_url = f"http://{args.oracle}"
        self.session: aiohttp.ClientSession | None = None
        self.fresh_from_oracle = False
        self.price_source = "none"
        self.recent: dict[int, float] = {}
        self.liquidations_sent = 0
        self.last_check = 0.0

    async def prices(self) -> dict[str, dict[str, float]]:
        assert self.session is not None
        try:
            async with self.session.get(f"{self.oracle_url}/prices") as resp:
                resp.raise_for_status()
                answer: dict[str, Any] = await resp.json(loads=json.loads)
                markets: dict[str, dict[str, float]] = answer.get("markets", {})
            if markets:
                self.price_source = "oracle"
                now = time.time()
                if all(
                    m in markets and now - markets[m]["ts"] <= self.args.stale_after
                    for m in MARKET_NAMES
                ):
                    self.fresh_from_oracle = True
                return markets
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            pass
        rows = await self.db.fetch(NEWEST_ORACLE_PRICES_SQL)
        self.price_source = "db"
        return {
            m: {"mark_price": float(p), "funding_index": float(f), "ts": float(ts)}
            for m, p, f, ts in rows
        }

    async def step(self) -> None:
        prices = await self.prices()
        rows = await self.db.fetch(
            "SELECT a.account, a.collateral, p.market, p.size, p.entry_price, "
            "p.entry_funding_index FROM accounts a LEFT JOIN positions p "
            "ON p.account = a.account AND p.size <> 0 WHERE a.account <> %s",
            (INSURANCE_FUND,),
        )
        self.last_check = time.time()
        accounts: dict[int, tuple[float, list[tuple[str, float, float, float]]]] = {}
        for account, collateral, market, size, entry, f_entry in rows:
            _, positions = accounts.setdefault(account, (float(collateral), []))
            if market is not None:
                positions.append((market, float(size), float(entry), float(f_entry)))
        now = time.time()
        for account, (collateral, positions) in accounts.items():
            if not positions or any(m not in prices for m, *_ in positions):
                continue
            eq, maintenance = equity(
                collateral,
                [
                    (size, entry, f_entry, prices[m]["mark_price"], prices[m]["funding_index"])
                    for m, size, entry, f_entry in positions
                ],
            )
            if eq >= maintenance or now - self.recent.get(account, 0.0) < RETRY_AFTER_S:
                continue
            reason = self.block(prices, [m for m, *_ in positions], now)
            if reason is not None:
                log.info(
                    "not liquidating account %d (equity %.2f < %.2f): %s",
                    account,
                    eq,
                    maintenance,
                    reason,
                )
                continue
            self.recent[account] = now
            for market, size, _, _ in positions:
                await self.liquidate(
                    {
                        "account": account,
                        "market": market,
                        "qty": abs(size),
                        "mark_price": prices[market]["mark_price"],
                        "oracle_ts": prices[market]["ts"],
                        "funding_index": prices[market]["funding_index"],
                        "equity": eq,
                        "maintenance": maintenance,
                    }
                )

    def block(
        self, prices: dict[str, dict[str, float]], markets: list[str], now: float
    ) -> str | None:
        if "readiness_gates" in self.mitigations and not self.fresh_from_oracle:
            return "no fresh oracle price since start"
        if "staleness_guard" in self.mitigations:
            for market in markets:
                age = now - prices[market]["ts"]
                if age > self.args.stale_after:
                    return f"{market} price is {age:.1f} s old"
        return None

    async def liquidate(self, order: dict[str, Any]) -> None:
        assert self.session is not None
        for url in self.sequencers:
            try:
                async with self.session.post(f"{url}/liquidations", json=order) as resp:
                    body = await resp.text()
                    if resp.status == 200:
                        self.liquidations_sent += 1
                        log.info(
                            "liquidation of account %d in %s (equity %.2f < %.2f): %s",
                            order["account"],
                            order["market"],
                            order["equity"],
                            order["maintenance"],
                            body[:200],
                        )
                        return
            except (aiohttp.ClientError, TimeoutError):
                continue
        log.warning(
            "liquidation of account %d in %s not accepted by any sequencer",
            order["account"],
            order["market"],
        )

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=1.0)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self.session = session
            await every(0.2, self.step, "risk check")

    async def health(self, _request: web.Request) -> web.Response:
        return json_response(
            {
                "status": "ok",
                "price_source": self.price_source,
                "fresh_from_oracle": self.fresh_from_oracle,
                "liquidations_sent": self.liquidations_sent,
                "last_check_age": time.time() - self.last_check if self.last_check else None,
            }
        )


def build_app(args: Any) -> web.Application:
    risk = Risk(args)
    app = web.Application()
    app.add_routes([web.get("/health", risk.health)])
    spawn(app, risk.run, "risk")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = base_parser("risk")
    parser.add_argument("--db", required=True, help="host:port (the risk-db link)")
    parser.add_argument("--oracle", required=True, help="host:port (the risk-oracle link)")
    parser.add_argument("--sequencer", required=True, help="host:port (risk-sequencer link)")
    parser.add_argument("--standby", default=None, help="host:port (risk-sequencer_b link)")
    parser.add_argument("--stale-after", type=float, default=3.0)
    args = parse_args(parser, argv)
    serve(build_app(args), args.host, args.port)


if __name__ == "__main__":
    main()
