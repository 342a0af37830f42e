"""The ledger stack's genesis: a few deposits; with --plant also the harms the user checks
look for (an account driven below zero by a negative deposit)."""

from __future__ import annotations

import argparse

import psycopg

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--plant", action="store_true")
args = parser.parse_args()
entries = [(1, 1000), (2, 250), (1, 50), (2, 75)]
if args.plant:
    entries.append((3, -500))
with psycopg.connect(host="127.0.0.1", port=args.port, user="postgres", dbname="ledger",
                     connect_timeout=5) as conn:  # fmt: skip
    conn.cursor().executemany("INSERT INTO entries (account, amount) VALUES (%s, %s)", entries)
