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

-- Resting orders (orders that entered the book); order_id is the seq of order_accepted.
CREATE TABLE IF NOT EXISTS orders (
    order_id        bigint PRIMARY KEY,
    client_order_id text NOT NULL,
    account         integer NOT NULL,
    market          text NOT NULL,
    side            text NOT NULL,
    price           double precision NOT NULL,
    qty             double precision NOT NULL,
    remaining       double precision NOT NULL,
    status          text NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_open ON orders (market) WHERE status = 'open';

-- First result per client_order_id (idempotency_keys).
CREATE TABLE IF NOT EXISTS idempotency (
    client_order_id text PRIMARY KEY,
    result          jsonb NOT NULL
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
