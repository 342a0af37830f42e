"""`tradechaos export k8s`: every incident exports, every resource validates against the Chaos
Mesh CRDs offline, and each fault kind maps to the Chaos Mesh resource that does it."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.cli import main

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "k8s" / "data" / "chaos-mesh"
INCIDENTS = sorted((REPO / "experiments" / "incidents").glob("*.yaml"))
RESPONSE = REPO / "experiments" / "incidents" / "paradex-2026-response.yaml"


def _validator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "validate_chaos_mesh", DATA / "validate-chaos-mesh.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validate(folder: Path) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = _validator().main(["--crd", str(DATA / "crd-v2.8.3.yaml"), str(folder)])
    return int(code), out.getvalue()


def export(
    tmp_path: Path, *files: Path, variant: str | None = None, extra: tuple[str, ...] = ()
) -> Path:
    out = tmp_path / "out"
    args = [
        "export",
        "k8s",
        *map(str, files),
        "--namespace",
        "chaos-lab",
        "--out",
        str(out),
        *extra,
    ]
    assert main([*args, *(["--variant", variant] if variant else [])]) == 0
    return out


def templates(folder: Path) -> dict[str, dict[str, Any]]:
    workflow = yaml.safe_load((folder / "30-workflow.yaml").read_text())
    return {t["name"]: t for t in workflow["spec"]["templates"]}


def write(tmp_path: Path, method: str, extra: str = "", duration: str = "30s") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(
        f"name: mapping\nduration: {duration}\n{extra}variants:\n  only: {{mitigations: all}}\n"
        f"method:\n{method}invariants: [sequence_integrity]\n"
    )
    return path


def test_every_incident_exports_and_every_resource_validates(tmp_path: Path) -> None:
    out = export(tmp_path, *INCIDENTS)
    folders = sorted(p.parent for p in out.glob("*/tradechaos-k8s.json"))
    variants = sum(len(yaml.safe_load(p.read_text())["variants"]) for p in INCIDENTS)
    assert len(folders) == variants
    code, report = validate(out)
    assert code == 0, report
    counted = re.search(r"(\d+) documents, 0 errors", report)
    assert counted is not None, report
    documents = int(counted.group(1))
    assert documents >= 25 * variants
    for folder in folders:
        text = (folder / "README.md").read_text()
        assert "tradechaos check" in text and "tradechaos.io/run=" in text and "| step |" in text


def test_the_validator_catches_a_broken_resource(tmp_path: Path) -> None:
    out = export(
        tmp_path,
        write(
            tmp_path, "  - {at: 1s, action: latency, target: oracle-db, latency: 300ms, for: 2s}\n"
        ),
    )
    workflow = out / "30-workflow.yaml"
    workflow.write_text(workflow.read_text().replace("action: delay", "action: delayed"))
    code, report = validate(out)
    assert code == 1 and "delayed" in report


def test_latency_on_a_link_is_a_networkchaos_delay_from_client_to_server_pods(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "  - {id: slow, at: 2s, action: latency, target: oracle-db,"
        " latency: 300ms, jitter: 50ms, for: 5s}\n",
    )
    found = templates(export(tmp_path, path))
    template = found["s0-slow"]
    assert template["templateType"] == "NetworkChaos" and template["deadline"] == "5s"
    chaos = template["networkChaos"]
    assert chaos["action"] == "delay" and chaos["delay"] == {"latency": "300ms", "jitter": "50ms"}
    assert chaos["selector"]["labelSelectors"]["app.kubernetes.io/name"] == "oracle"
    assert chaos["target"]["selector"]["labelSelectors"]["app.kubernetes.io/name"] == "db"
    assert chaos["direction"] == "both" and chaos["mode"] == "all"
    assert chaos["selector"]["namespaces"] == ["chaos-lab"]
    assert "tradechaos.io/run" in chaos["selector"]["labelSelectors"]
    assert found["s0-slow-at"] == {
        "name": "s0-slow-at",
        "templateType": "Suspend",
        "deadline": "2s",
    }


def test_network_toxics_map_to_their_networkchaos_actions(tmp_path: Path) -> None:
    method = (
        "  - {id: bw, at: 1s, action: bandwidth, target: writer-chain, rate: 100,"
        " direction: upstream, for: 2s}\n"
        "  - {id: cut, at: 1s, action: reset_peer, target: clients-sequencer,"
        " direction: downstream, for: 2s}\n"
        "  - {id: unplug, at: 1s, action: down, target: risk-oracle, for: 2s}\n"
        "  - {id: split, at: 1s, action: partition, between: [oracle], and: [db], for: 2s}\n"
        "  - {id: all-of-writer, at: 1s, action: latency, target: writer, latency: 1s, for: 2s}\n"
    )
    found = templates(export(tmp_path, write(tmp_path, method)))
    bandwidth = found["s0-bw"]["networkChaos"]
    assert bandwidth["action"] == "bandwidth" and bandwidth["bandwidth"]["rate"] == "800kbps"
    assert bandwidth["direction"] == "to"
    cut = found["s1-cut"]["networkChaos"]
    assert cut["action"] == "partition" and cut["direction"] == "from"
    assert (
        cut["selector"]["labelSelectors"]["app.kubernetes.io/name"] == "clients"
    )  # the load's workers
    assert found["s2-unplug"]["networkChaos"]["action"] == "partition"
    split = found["s3-split"]["networkChaos"]
    assert split["target"]["selector"]["labelSelectors"]["app.kubernetes.io/name"] == "db"
    links = [
        t
        for n, t in found.items()
        if n.startswith("s4-all-of-writer-") and t["templateType"] == "NetworkChaos"
    ]
    assert len(links) == 2  # writer-db and writer-chain, one NetworkChaos each
    assert all(t["networkChaos"]["delay"]["latency"] == "1s" for t in links)


def test_process_faults_map_to_podchaos_and_stresschaos(tmp_path: Path) -> None:
    method = (
        "  - {id: bounce, at: 1s, action: restart, target: risk}\n"
        "  - {id: bounce-hard, at: 1s, action: restart, target: writer, signal: kill}\n"
        "  - {id: slow-start, at: 1s, action: restart, target: chain, downtime: 3s}\n"
        "  - {id: down, at: 2s, action: stop, target: [oracle]}\n"
        "  - {id: up, at: 9s, action: start, target: [oracle]}\n"
        "  - {id: dead, at: 2s, action: kill, target: feeds, for: 4s}\n"
        "  - {id: hot, at: 1s, action: throttle, target: sequencer, cpu: 0.25, for: 3s}\n"
        "  - {id: frozen, at: 1s, action: pause, target: risk, for: 2s}\n"
        "  - {id: rolling, at: 10s, action: rolling_restart, target: [oracle, writer], gap: 2s}\n"
    )
    found = templates(export(tmp_path, write(tmp_path, method)))
    assert found["s0-bounce"]["podChaos"]["action"] == "pod-kill"
    assert found["s0-bounce"]["podChaos"]["gracePeriod"] == 5
    assert found["s1-bounce-hard"]["podChaos"]["action"] == "container-kill"
    assert found["s1-bounce-hard"]["podChaos"]["containerNames"] == ["service"]
    assert found["s2-slow-start"]["podChaos"]["action"] == "pod-failure"
    assert found["s2-slow-start"]["deadline"] == "3s"
    stop = found["s3-down"]
    assert stop["podChaos"]["action"] == "pod-failure" and stop["deadline"] == "7s"  # until start
    assert not any(
        n.startswith("s4-up") and t["templateType"] != "Suspend" for n, t in found.items()
    )
    assert (
        found["s5-dead"]["podChaos"]["action"] == "pod-failure"
        and found["s5-dead"]["deadline"] == "4s"
    )
    stress = found["s6-hot"]["stressChaos"]
    assert (
        stress["stressors"] == {"cpu": {"workers": 1, "load": 75}}
        and found["s6-hot"]["deadline"] == "3s"
    )
    pause = found["s7-frozen"]["networkChaos"]
    assert (
        pause["action"] == "partition"
        and pause["target"]["selector"]["expressionSelectors"][0]["operator"] == "NotIn"
    )
    rolling = found["s8-rolling"]
    assert rolling["templateType"] == "Serial"
    kinds = [found[c]["templateType"] for c in rolling["children"]]
    assert kinds == ["PodChaos", "Suspend", "PodChaos"]


def test_node_loss_is_a_ramp_of_delay_and_stress_then_a_pod_failure_of_the_site(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "  - {id: heat, at: 2s, action: node_loss, target: a, ramp: 4s, steps: 2,"
        " max_latency: 200ms, min_cpu: 0.5}\n",
        duration="20s",
    )
    found = templates(export(tmp_path, path))
    serial = found["s0-heat"]
    assert serial["templateType"] == "Serial"
    assert [c for c in serial["children"]] == ["s0-heat-ramp1", "s0-heat-ramp2", "s0-heat-loss"]
    ramp1 = [found[c] for c in found["s0-heat-ramp1"]["children"]]
    assert ramp1[0]["networkChaos"]["delay"]["latency"] == "100ms" and ramp1[0]["deadline"] == "2s"
    assert ramp1[0]["networkChaos"]["selector"]["labelSelectors"]["tradechaos.io/site"] == "a"
    assert ramp1[1]["stressChaos"]["stressors"]["cpu"]["load"] == 25
    ramp2 = [found[c] for c in found["s0-heat-ramp2"]["children"]]
    assert (
        ramp2[0]["networkChaos"]["delay"]["latency"] == "200ms"
        and ramp2[1]["stressChaos"]["stressors"]["cpu"]["load"] == 50
    )
    loss = found["s0-heat-loss"]
    assert loss["podChaos"]["action"] == "pod-failure" and loss["deadline"] == "14s"  # to the end


def test_steps_chaos_mesh_cannot_do_are_tasks_running_tradechaos_step(tmp_path: Path) -> None:
    method = (
        "  - {id: halt-trading, at: 1s, action: trading_mode, mode: cancel_only}\n"
        "  - {id: zero, at: 2s, action: feed_fault, kind: zero, venue: 1, for: 3s}\n"
        "  - {id: crash, after: halt-trading, at: 1s, action: price_move, pct: -10, over: 2s}\n"
    )
    out = export(tmp_path, write(tmp_path, method))
    found = templates(out)
    task = found["s0-halt-trading"]
    assert task["templateType"] == "Task"
    command = task["task"]["container"]["command"]
    assert command[1:5] == ["step", "trading_mode", "--id", "halt-trading"]
    assert "--param" in command and 'mode="cancel_only"' in command
    urls = [command[i + 1] for i, arg in enumerate(command) if arg == "--service-url"]
    assert "sequencer=http://sequencer.chaos-lab.svc.cluster.local:8080/health" in urls
    assert "db=pg://db.chaos-lab.svc.cluster.local:5432" in urls
    assert task["task"]["labels"]["tradechaos.io/step"] == "s0-halt-trading"
    feed = found["s1-zero"]["task"]["container"]["command"]
    assert feed[feed.index("--hold") + 1] == "3"
    branch = found["s0-halt-trading-branch"]  # the follower runs after the Task ends
    assert branch["children"][:2] == ["s0-halt-trading-at", "s0-halt-trading"]
    assert found[branch["children"][2]]["children"] == ["s2-crash-at", "s2-crash"]
    rows = json.loads((out / "tradechaos-k8s.json").read_text())["steps"]
    assert rows[0]["resources"] == "Task: tradechaos step trading_mode"


def test_flap_unrolls_into_bad_and_good_periods(tmp_path: Path) -> None:
    method = (
        "  - {at: 2s, for: 5s, action: flap, target: clients-sequencer, period: 2s,"
        " bad_fraction: 0.5, fault: {action: reset_peer, direction: downstream}}\n"
    )
    found = templates(export(tmp_path, write(tmp_path, method)))
    serial = found["s0-flap-0"]
    kinds = [(found[c]["templateType"], found[c].get("deadline")) for c in serial["children"]]
    assert kinds == [
        ("NetworkChaos", "1s"),
        ("Suspend", "1s"),
        ("NetworkChaos", "1s"),
        ("Suspend", "1s"),
        ("NetworkChaos", "1s"),
    ]


def test_stack_objects_resolve_links_to_service_dns_and_probe_health(tmp_path: Path) -> None:
    out = export(tmp_path, INCIDENTS[0], variant="vulnerable")
    objects = list(yaml.safe_load_all((out / "10-stack.yaml").read_text()))
    by = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    oracle = by[("Deployment", "oracle")]["spec"]["template"]["spec"]
    command = oracle["containers"][0]["command"]
    assert command[command.index("--db") + 1] == "link-oracle-db.chaos-lab.svc.cluster.local:5432"
    assert command[command.index("--host") + 1] == "0.0.0.0"  # {host}: every interface
    assert "$(TRADECHAOS_EPOCH)" in command
    assert oracle["containers"][0]["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert oracle["initContainers"][0]["command"][:3] == [
        "/opt/tradechaos/bin/tradechaos",
        "step",
        "wait_healthy",
    ]
    db = by[("StatefulSet", "db")]
    assert db["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"][
        0
    ].endswith("pg_isready")
    assert db["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert "postStart" in db["spec"]["template"]["spec"]["containers"][0]["lifecycle"]
    link = by[("Service", "link-oracle-db")]
    assert link["spec"]["selector"]["app.kubernetes.io/name"] == "db"
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "reference" and labels["tradechaos.io/run"]
    load = list(yaml.safe_load_all((out / "20-load.yaml").read_text()))
    workers = next(o for o in load if o["metadata"]["name"] == "load-worker")
    assert workers["spec"]["replicas"] == 2  # the experiment has no load.workers: 2


def _load_commands(out: Path) -> dict[str, list[str]]:
    load = list(yaml.safe_load_all((out / "20-load.yaml").read_text()))
    return {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"][0]["command"]
        for o in load
        if o["kind"] == "Deployment"
    }


def test_a_stack_without_an_orders_binding_gets_no_load(tmp_path: Path) -> None:
    stack = REPO / "tests" / "data" / "ledger" / "stack.yaml"
    path = write(
        tmp_path,
        "  - {id: cut, at: 0s, action: stop, target: db, for: 1s}\n",
        extra=f"stack: {{file: {stack}}}\n",
    )
    out = export(tmp_path, path)
    load = [o for o in yaml.safe_load_all((out / "20-load.yaml").read_text()) if o]
    assert load == []


def test_the_load_is_tradechaos_own_master_and_workers_writing_the_client_history(
    tmp_path: Path,
) -> None:
    """The same processes as a local `load: {workers: N}` run, so the client history is
    collected from the workers' output and the invariants that read it are judged."""
    from chaos.load.worker import parse_args

    path = write(
        tmp_path,
        "  - {id: slow, at: 0s, action: latency, target: oracle-db, latency: 1ms, for: 1s}\n",
        extra="load: {users: 12, spawn_rate: 6, workers: 3}\n",
    )
    commands = _load_commands(export(tmp_path, path))
    master, worker = commands["load-master"], commands["load-worker"]
    assert master[1:5] == ["-m", "chaos.load.worker", "--role", "master"]
    assert worker[1:5] == ["-m", "chaos.load.worker", "--role", "worker"]
    parsed_master, parsed_worker = parse_args(master[3:]), parse_args(worker[3:])
    assert parsed_master.workers == parsed_worker.workers == 3
    assert parsed_master.users == 12 and parsed_master.spawn_rate == 6
    assert parsed_master.master_bind_host == "0.0.0.0"  # a pod listens on its pod IP
    assert parsed_master.host.startswith("http://link-clients-sequencer.chaos-lab.svc")
    assert parsed_worker.history_stdout and parsed_worker.worker_index is None  # Locust's
    assert parsed_worker.master_host == "load-master.chaos-lab.svc.cluster.local"
    assert parsed_worker.accounts == parsed_master.accounts == ",".join(map(str, range(1, 37)))
    readme = next((tmp_path / "out").rglob("README.md")).read_text()
    assert "app.kubernetes.io/component=locust-worker" in readme  # collected with the steps
    override = export(tmp_path / "again", path, extra=("--load-workers", "5"))
    again = _load_commands(override)
    assert parse_args(again["load-worker"][3:]).workers == 5


@pytest.mark.parametrize(
    ("step", "says"),
    [
        (
            "{at: 1s, action: slicer, target: oracle-db, for: 2s}",
            "the slicer toxic has no Chaos Mesh equivalent",
        ),
        (
            "{at: 1s, action: latency, target: oracle-db, latency: 1s, toxicity: 0.5, for: 2s}",
            "toxicity below 1",
        ),
        ("{at: 1s, action: start, target: oracle}", "start of a service no earlier step stopped"),
    ],
)
def test_a_step_that_cannot_be_expressed_is_exit_2_naming_it(
    tmp_path: Path, step: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "  - {id: bad, at: 0s, action: latency, target: oracle-db, latency: 1ms, for: 1s}\n"
        f"  - {step}\n",
    )
    code = main(
        ["export", "k8s", str(path), "--namespace", "chaos-lab", "--out", str(tmp_path / "out")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert f"{path}:7: method[1]" in err  # the line of the step and says in err
    assert not (tmp_path / "out" / "30-workflow.yaml").exists()


def test_the_runbook_steps_share_answers_through_a_configmap_of_the_run(tmp_path: Path) -> None:
    out = export(tmp_path, RESPONSE, variant="mitigated")
    objects = [
        o for p in sorted(out.glob("*.yaml")) for o in yaml.safe_load_all(p.read_text()) if o
    ]
    runbook = [o for o in objects if o["metadata"]["name"] == "tradechaos-runbook"]
    assert len(runbook) == 1 and runbook[0]["kind"] == "ConfigMap"
    assert runbook[0]["data"] == {}  # one data key per entry, written by the steps
    assert runbook[0]["metadata"]["labels"]["tradechaos.io/run"]
    role = next(o for o in objects if o["kind"] == "Role")
    assert {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["tradechaos-runbook"],
        "verbs": ["get", "patch"],
    } in role["rules"]
    found = templates(out)
    rollback = found["s12-rollback"]["task"]["container"]["command"]
    assert "--namespace" in rollback and "--run-id" in rollback
    assert "chain_rollback" in rollback and 'to="pre"' in rollback


def test_runbook_steps_without_an_earlier_answer_are_tasks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "  - {id: bad, at: 0s, action: latency, target: oracle-db, latency: 1ms, for: 1s}\n"
        "  - {id: cut, at: 1s, action: cancel_all}\n"
        "  - {id: back, at: 2s, action: chain_rollback, seq: 10, chain_height: 2}\n",
    )
    found = templates(export(tmp_path, path))
    cut = found["s1-cut"]["task"]["container"]["command"]
    back = found["s2-back"]["task"]["container"]["command"]
    assert cut[1:5] == ["step", "cancel_all", "--id", "cut"]
    assert back[1:5] == ["step", "chain_rollback", "--id", "back"]
    assert "seq=10" in back and "chain_height=2" in back


def test_bad_export_arguments_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["export", "k8s", str(INCIDENTS[0]), "--namespace", "Bad_NS", "--out", str(tmp_path)])
        == 2
    )
    assert "not a DNS label" in capsys.readouterr().err
    assert (
        main(
            [
                "export",
                "k8s",
                str(INCIDENTS[0]),
                "--namespace",
                "ns",
                "--out",
                str(tmp_path),
                "--variant",
                "nope",
            ]
        )
        == 2
    )
    assert "no variant 'nope'" in capsys.readouterr().err


def test_the_vendored_crds_and_validator_are_the_documented_ones() -> None:
    readme = (DATA / "README.md").read_text()
    for name in ("crd-v2.8.3.yaml", "LICENSE", "validate-chaos-mesh.py"):
        digest = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        assert digest in readme, (
            f"{name}: sha256 {digest} is not the one tests/k8s/data/chaos-mesh/README.md names"
        )
    shared = REPO.parent / "shared"
    if not shared.is_dir():
        shared = REPO.parent.parent / "shared"
    pairs = [
        ("vendor/chaos-mesh/crd-v2.8.3.yaml", "crd-v2.8.3.yaml"),
        ("tools/validate-chaos-mesh.py", "validate-chaos-mesh.py"),
    ]
    for upstream, here in pairs:
        if (shared / upstream).is_file():
            assert (shared / upstream).read_bytes() == (DATA / here).read_bytes(), (
                f"{here} differs from shared/{upstream}"
            )


def test_every_tradechaos_command_in_an_export_parses_as_the_cli_expects(tmp_path: Path) -> None:
    """The Tasks, init containers and postStart hooks call `tradechaos step`: their argv
    must be what the command accepts (and name a known action)."""
    from chaos.cli import build_parser
    from chaos.experiment.actions import ACTIONS

    out = export(tmp_path, *INCIDENTS)
    commands: list[list[str]] = []
    for path in out.glob("*/*.yaml"):
        text = path.read_text()
        for doc in yaml.safe_load_all(text):
            stack = [doc]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    command = node.get("command")
                    if isinstance(command, list) and command[:1] == [
                        "/opt/tradechaos/bin/tradechaos"
                    ]:
                        commands.append(command)
                    stack.extend(node.values())
                elif isinstance(node, list):
                    stack.extend(node)
    actions = {c[2] for c in commands}
    assert {"wait_healthy", "trading_mode", "db_upgrade", "price_move"} <= actions
    parser = build_parser()
    for command in commands:
        args = parser.parse_args(command[1:])
        assert args.action == "wait_healthy" or args.action in ACTIONS
        assert args.service_url, command
    hooks = [c for c in commands if "--then" in c]
    assert hooks and all(c[c.index("--then") + 1].endswith("python") for c in hooks)


def readme_history(readme: str) -> tuple[list[str], list[str]]:
    """(the port-forward lines, the `tradechaos stack history` command as argv)."""
    import shlex

    lines = [line.strip() for line in readme.replace("\\\n", " ").splitlines()]
    forwards = [line for line in lines if "port-forward" in line]
    history = [shlex.split(line) for line in lines if line.startswith("tradechaos stack history")]
    assert len(history) == 1, lines
    return forwards, history[0]


@pytest.mark.parametrize(
    ("experiment", "reads"),
    [
        (INCIDENTS[0], {"chain": "svc/chain", "sequencer-db": "svc/link-sequencer-db"}),
        (
            REPO / "examples" / "minidex" / "experiments" / "late-pricer-restart.yaml",
            {"engine-pg": "svc/link-engine-pg", "pricer-pg": "svc/link-pricer-pg"},
        ),
    ],
)
def test_the_readme_collects_what_the_stack_files_history_binding_reads(
    tmp_path: Path, experiment: Path, reads: dict[str, str]
) -> None:
    """The collect step port-forwards each name the history binding reads (from the stack
    file, no stack named in the exporter) and `tradechaos stack history` reads them there."""
    from chaos.cli import build_parser

    out = export(tmp_path, experiment)
    readme = next(out.glob("*/README.md")).read_text()
    assert "chaos.stack.exporter" not in readme
    forwards, argv = readme_history(readme)
    assert [f.split()[4] for f in forwards] == list(reads.values())
    args = build_parser().parse_args(argv[1:])
    given = dict(item.split("=", 1) for item in args.addresses)
    assert list(given) == list(reads)
    locals_ = [f.split()[5].split(":")[0] for f in forwards]
    assert [a.rsplit(":", 1)[1] for a in given.values()] == locals_
    if "minidex" in str(experiment):
        assert args.stack.endswith("examples/minidex/stack.yaml")
