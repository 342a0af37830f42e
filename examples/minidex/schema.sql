-- minidex's database. Idempotent: safe to apply again.

-- journal: everything the engine did, in order. n is the engine's own counter (it is the
-- only writer and commits in n order), so n has no gaps. Which columns a typ uses:
--   CREDIT  acct, amount, origin                       money paid in
--   ORDER   acct, sym, side, kind, px (null: MARKET), sz, po, cid     an accepted order
--   CANCEL  acct, sym, side, px, sz (what was left), cid, ref (the ORDER's n)
--   TRADE   acct (taker), side (taker's), sym, px, sz, cid, ref (taker's ORDER n, null in
--           a liquidation), counterparty (maker, or the insurance account), cp_ref (maker's
--           ORDER n), liq, mark and mark_at (the mark the engine held when it matched)
--   LIQ     acct, sym, side, sz, mark, mark_at, equity, maint   precedes its TRADEs
--   STATUS  status (OPEN | REDUCE_ONLY | CANCEL_ONLY | HALTED), origin
CREATE TABLE IF NOT EXISTS journal (
    n            bigint PRIMARY KEY,
    at           timestamptz NOT NULL,
    typ          text NOT NULL,
    acct         integer,
    sym          text,
    side         text,
    kind         text,
    px           numeric,
    sz           numeric,
    po           boolean,
    cid          text,
    ref          bigint,
    counterparty integer,
    cp_ref       bigint,
    liq          boolean NOT NULL DEFAULT false,
    mark         numeric,
    mark_at      timestamptz,
    amount       numeric,
    status       text,
    origin       text,
    equity       numeric,
    maint        numeric
);

-- The first reply to each (acct, cid) that was accepted: what MINIDEX_DEDUPE=1 answers a
-- retry with.
CREATE TABLE IF NOT EXISTS replies (
    acct  integer NOT NULL,
    cid   text NOT NULL,
    txn   bigint NOT NULL,
    reply jsonb NOT NULL,
    PRIMARY KEY (acct, cid)
);

-- The pricer's output: the median of the venues' quotes, one row per symbol per round.
CREATE TABLE IF NOT EXISTS marks (
    n      bigserial PRIMARY KEY,
    sym    text NOT NULL,
    px     numeric NOT NULL,
    at     timestamptz NOT NULL,
    inputs jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS marks_newest ON marks (sym, n DESC);

-- The settler's ledger: consecutive journal ranges, hash-linked, and each account's cash
-- as of the newest settled entry.
CREATE TABLE IF NOT EXISTS settlements (
    batch   bigint PRIMARY KEY,
    first_n bigint NOT NULL,
    last_n  bigint NOT NULL,
    entries integer NOT NULL,
    digest  text NOT NULL,
    prev    text NOT NULL,
    at      timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS balances (
    acct      integer PRIMARY KEY,
    cash      numeric NOT NULL,
    settled_n bigint NOT NULL
);
