-- The reference stack's database. Idempotent: safe to apply again.
-- events: the sequenced event log. seq is NOT unique on purpose: two sequencers that both
-- believe they lead (split brain without fencing) record duplicate seqs, which the checkers
-- must be able to see.
CREATE TABLE IF NOT EXISTS events (
    id        bigserial PRIMARY KEY,
    seq       bigint NOT NULL,
    epoch     bigint NOT NULL,
    sequencer text NOT NULL,
    time      double precision NOT NULL,
    kind      text NOT NULL,
    body      jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS events_seq ON events (seq);

CREATE TABLE IF NOT EXISTS accounts (
    account    integer PRIMARY KEY,
    collateral double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS positions (
    account             integer NOT NULL,
    market              text NOT NULL,
    size                double precision NOT NULL,
    entry_price         double precision NOT NULL,
    entry_funding_index double precision NOT NULL,
    realised_pnl        double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (account, market)
);

-- Resting orders (orders that entered the book) and trigger orders (take_profit/stop_loss:
-- status pending until triggered; price null = a market order once triggered); order_id is
-- the seq of order_accepted.
CREATE TABLE IF NOT EXISTS orders (
    order_id        bigint PRIMARY KEY,
    client_order_id text NOT NULL,
    account         integer NOT NULL,
    market          text NOT NULL,
    side            text NOT NULL,
    price           double precision,
    qty             double precision NOT NULL,
    remaining       double precision NOT NULL,
    status          text NOT NULL,
    order_type      text NOT NULL DEFAULT 'limit',
    trigger_price   double precision
);
ALTER TABLE orders ALTER COLUMN price DROP NOT NULL;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS order_type text NOT NULL DEFAULT 'limit';
ALTER TABLE orders ADD COLUMN IF NOT EXISTS trigger_price double precision;
CREATE INDEX IF NOT EXISTS orders_open ON orders (market) WHERE status = 'open';

-- First result per client_order_id (idempotency_keys); at_seq: the log's seq when it was
-- recorded (a rollback to seq S forgets the results recorded after S).
CREATE TABLE IF NOT EXISTS idempotency (
    client_order_id text PRIMARY KEY,
    result          jsonb NOT NULL,
    at_seq          bigint NOT NULL DEFAULT 0
);
ALTER TABLE idempotency ADD COLUMN IF NOT EXISTS at_seq bigint NOT NULL DEFAULT 0;

-- Traders' access (POST /admin/disable_access): no row = enabled. Not sequenced state: a
-- rollback does not change it.
CREATE TABLE IF NOT EXISTS access_control (
    id      integer PRIMARY KEY DEFAULT 1,
    enabled boolean NOT NULL,
    reason  text NOT NULL DEFAULT '',
    ts      double precision NOT NULL
);

-- Snapshots (POST /admin/snapshot): the event log's seq, the chain head the writer had
-- recorded, and the market state (funding index per market) at that point.
CREATE TABLE IF NOT EXISTS snapshots (
    label          text PRIMARY KEY,
    seq            bigint NOT NULL,
    time           double precision NOT NULL,
    chain_height   bigint NOT NULL,
    chain_last_seq bigint NOT NULL,
    chain_hash     text NOT NULL,
    market_state   jsonb NOT NULL DEFAULT '[]'
);

-- Rollbacks (POST /admin/rollback): the db part is done by the sequencer in one transaction;
-- the writer then rolls the chain back to chain_height and sets chain_done_at.
CREATE TABLE IF NOT EXISTS rollbacks (
    id            bigserial PRIMARY KEY,
    snapshot      text,
    to_seq        bigint NOT NULL,
    from_seq      bigint NOT NULL,
    chain_height  bigint NOT NULL,
    chain_hash    text,
    time          double precision NOT NULL,
    chain_done_at double precision,
    chain_dropped bigint,
    chain_error   text
);

-- The events a rollback removed from the log (the rows of events, with their rollback).
CREATE TABLE IF NOT EXISTS rolled_back_events (
    rollback  bigint NOT NULL,
    id        bigint NOT NULL,
    seq       bigint NOT NULL,
    epoch     bigint NOT NULL,
    sequencer text NOT NULL,
    time      double precision NOT NULL,
    kind      text NOT NULL,
    body      jsonb NOT NULL,
    PRIMARY KEY (rollback, id)
);

-- Every block the writer got accepted: a rollback to a height finds its last seq here.
CREATE TABLE IF NOT EXISTS written_blocks (
    height   bigint PRIMARY KEY,
    last_seq bigint NOT NULL,
    hash     text NOT NULL,
    ts       double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS market_state (
    market        text PRIMARY KEY,
    funding_index double precision NOT NULL,
    interval      bigint NOT NULL,
    mark_price    double precision,
    ts            double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS oracle_prices (
    id            bigserial PRIMARY KEY,
    market        text NOT NULL,
    mark_price    double precision NOT NULL,
    funding_index double precision NOT NULL,
    interval      bigint NOT NULL,
    ts            double precision NOT NULL,
    inputs        jsonb NOT NULL DEFAULT '[]',
    restored      boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS oracle_prices_market ON oracle_prices (market, id DESC);

CREATE TABLE IF NOT EXISTS leases (
    id         integer PRIMARY KEY DEFAULT 1,
    epoch      bigint NOT NULL,
    holder     text NOT NULL,
    renewed_at double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS trading_mode (
    id   integer PRIMARY KEY DEFAULT 1,
    mode text NOT NULL,
    ts   double precision NOT NULL
);

CREATE TABLE IF NOT EXISTS writer_state (
    id        integer PRIMARY KEY DEFAULT 1,
    height    bigint NOT NULL,
    last_seq  bigint NOT NULL,
    hash      text NOT NULL DEFAULT '',
    ts        double precision NOT NULL
);
