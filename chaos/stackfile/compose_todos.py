"""The ``# TODO`` sections of a stack-file draft (``tradechaos stack import``): what a
Compose file cannot say, as commented-out examples filled with the draft's own names (the
service that likely takes orders, the database and the link to it)."""

from __future__ import annotations

from string import Template

MARKETS = """\

TODO markets: the world's markets, the truth the checkers judge against (and what
builtin venues serve). Without them the reference markets BTC-PERP and ETH-PERP are used.
For example:
markets:
  BTC-USD: {initial_price: 60000, volatility: 0.002, tick: 0.5, maintenance_margin: 0.02}"""

MITIGATIONS = Template("""\

TODO mitigations: the guards of your stack, each switched on or off per experiment
variant through env values or arguments, e.g.
mitigations:
  staleness_guard:
    services: {$api: {env: {MAX_PRICE_AGE_MS: {on: "3000", off: "0"}}}}""")

TAKES_MITIGATIONS = """\
Its services take the guards that are on as {mitigations}: declare each one here
(a name and a help text are enough)."""

BINDINGS = Template("""\

bindings: how tradechaos talks to the stack (docs/stack-file.md). Each one is optional;
a step or invariant that needs a missing one says so. Uncomment and fill in what your
stack has, then `tradechaos stack check`.
bindings:
  # TODO orders: how traders submit and cancel orders
  orders:
    via: clients->$api
    submit: {POST: /orders, body: {client_order_id: "{client_order_id}",
             account: "{account}", market: "{market}", side: "{side}",
             type: "{type}", price: "{price}", qty: "{qty}"}}
    cancel: {POST: /orders/cancel, body: {client_order_id: "{client_order_id}"}}
    answer: {ok: [{status: 200}], fail: [{status: 4xx}]}
  # TODO accounts: the traders' accounts and how they are funded
  accounts:
    traders: 1-36
    collateral: 100000
    fund: {POST: /admin/deposit, service: $api,
           body: {account: "{account}", amount: "{amount}"}}
  # TODO trading_mode: how to read and set normal / post_only / cancel_only / halt
  trading_mode:
    services: [$api]
    set: {POST: /admin/mode, body: {mode: "{mode}"}}
    get: {GET: /mode, mode: $$.mode}
  # TODO db_upgrade: the database a db_upgrade step migrates
  db_upgrade: {database: $db}
  # TODO history: the stack's records as tradechaos's History (docs/history.md)
  history:
    events:
      sql:
        database: $db_link
        query: SELECT seq, epoch, sequencer, time, kind, body FROM events ORDER BY seq
        merge: [body]""")


def lines(text: str) -> list[str]:
    """A section's comment lines (an empty line stays a blank line)."""
    return text.split("\n")


def mitigations(api: str, takes_flag: bool) -> list[str]:
    found = lines(MITIGATIONS.substitute(api=api))
    return [*found, *lines(TAKES_MITIGATIONS)] if takes_flag else found


def bindings(api: str, db: str, db_link: str) -> list[str]:
    return lines(BINDINGS.substitute(api=api, db=db, db_link=db_link))
