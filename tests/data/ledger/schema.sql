CREATE TABLE entries (
    id serial PRIMARY KEY,
    account integer,
    amount numeric NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
);
