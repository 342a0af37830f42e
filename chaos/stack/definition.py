"""The reference stack as a ``StackDefinition``: what the engine needs to run it.

Imports nothing heavy: the engine loads this module to start the stack, never the services.
"""

from __future__ import annotations

from chaos.stack.mitigations import MITIGATIONS, parse_mitigations
from chaos.stackdef import HealthCheck, LinkSpec, ServiceSpec, StackDefinition

__all__ = ["MITIGATIONS", "parse_mitigations", "reference_stack"]

_COMMON = (
    "--run-dir",
    "{run_dir}",
    "--seed",
    "{seed}",
    "--epoch",
    "{epoch}",
    "--mitigations",
    "{mitigations}",
)


def _service_cmd(module: str, *args: str) -> tuple[str, ...]:
    return ("{python}", "-m", f"chaos.stack.{module}", "--port", "{port}", *_COMMON, *args)


def _links(standby: bool) -> tuple[LinkSpec, ...]:
    pairs = [
        ("clients", "sequencer"),
        ("sequencer", "db"),
        ("oracle", "db"),
        ("oracle", "feeds"),
        ("risk", "db"),
        ("risk", "oracle"),
        ("risk", "sequencer"),
        ("writer", "db"),
        ("writer", "chain"),
        ("clients", "feeds"),
    ]
    if standby:
        pairs += [("clients", "sequencer_b"), ("sequencer_b", "db"), ("risk", "sequencer_b")]
    return tuple(LinkSpec(f"{client}-{server}", client, server) for client, server in pairs)


def reference_stack(standby: bool = False, venues: int = 3, rto_s: float = 5.0) -> StackDefinition:
    """db, feeds, oracle, sequencer, risk, writer, chain (+ sequencer_b on site b).

    Sites: ``a`` = sequencer and oracle (the primary site), ``b`` = sequencer_b,
    ``core`` = the rest. Every service-to-service address is a link (``{link:NAME}``).
    """
    db = ServiceSpec(
        name="db",
        command=(
            "{python}",
            "-m",
            "chaos.stack.db",
            "serve",
            "--data-dir",
            "{data_dir}",
            "--port",
            "{port}",
            "--pg-bin",
            "{pg_bin}",
        ),
        health=HealthCheck(kind="pg", timeout_s=20.0),
        site="core",
        setup=(
            (
                "{python}",
                "-m",
                "chaos.stack.db",
                "setup",
                "--data-dir",
                "{data_dir}",
                "--pg-bin",
                "{pg_bin}",
            ),
        ),
        after_healthy=(
            (
                "{python}",
                "-m",
                "chaos.stack.db",
                "init",
                "--dsn-host",
                "{host}",
                "--port",
                "{port}",
                "--seed",
                "{seed}",
            ),
        ),
        stop_grace_s=10.0,
    )
    feeds = ServiceSpec(
        name="feeds", command=_service_cmd("feeds", "--venues", str(venues)), site="core"
    )
    oracle = ServiceSpec(
        name="oracle",
        command=_service_cmd(
            "oracle", "--db", "{link:oracle-db}", "--feeds", "{link:oracle-feeds}"
        ),
        depends_on=("db", "feeds"),
        site="a",
    )
    sequencer = ServiceSpec(
        name="sequencer",
        command=_service_cmd(
            "sequencer",
            "--db",
            "{link:sequencer-db}",
            "--instance",
            "a",
            "--role",
            "primary",
            "--rto",
            f"{rto_s:g}",
        ),
        depends_on=("db",),
        site="a",
    )
    services = [db, feeds, oracle, sequencer]
    risk_args = [
        "--db",
        "{link:risk-db}",
        "--oracle",
        "{link:risk-oracle}",
        "--sequencer",
        "{link:risk-sequencer}",
    ]
    if standby:
        services.append(
            ServiceSpec(
                name="sequencer_b",
                command=_service_cmd(
                    "sequencer",
                    "--db",
                    "{link:sequencer_b-db}",
                    "--instance",
                    "b",
                    "--role",
                    "standby",
                    "--rto",
                    f"{rto_s:g}",
                ),
                depends_on=("db", "sequencer"),
                site="b",
            )
        )
        risk_args += ["--standby", "{link:risk-sequencer_b}"]
    chain = ServiceSpec(
        name="chain", command=_service_cmd("chain", "--data-dir", "{data_dir}"), site="core"
    )
    services += [
        ServiceSpec(
            name="risk",
            command=_service_cmd("risk", *risk_args),
            depends_on=("db", "oracle", "sequencer"),
            site="core",
        ),
        chain,
        ServiceSpec(
            name="writer",
            command=_service_cmd(
                "writer", "--db", "{link:writer-db}", "--chain", "{link:writer-chain}"
            ),
            depends_on=("db", "chain"),
            site="core",
        ),
    ]
    return StackDefinition(
        name="reference",
        services=tuple(services),
        links=_links(standby),
        history_exporter="chaos.stack.exporter:export_history",
    )
