"""minidex: a small perpetual-futures exchange (engine, pricer, settler) over PostgreSQL.

Every service is ``python -m minidex.<service>`` and is configured by MINIDEX_* environment
variables only (``minidex.config``). The engine's ``journal`` table is the single source of
truth: the engine rebuilds its books and accounts from it at start.
"""
