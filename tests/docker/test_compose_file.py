"""The committed compose file is generated from the reference stack file and must stay so."""

from __future__ import annotations

from pathlib import Path

import yaml

from chaos.backends import compose_gen
from chaos.stackfile import load, reference_stack_path, resolve
from chaos.stackfile.definition import StackDefinition

COMPOSE_FILE = Path(__file__).resolve().parents[2] / "compose" / "docker-compose.yml"


def reference_stack() -> StackDefinition:
    return resolve(load(reference_stack_path()))


def test_committed_compose_file_is_generated_from_the_definition() -> None:
    expected = compose_gen.generate(reference_stack(), COMPOSE_FILE)
    assert COMPOSE_FILE.read_text() == expected, (
        "compose/docker-compose.yml is out of date with chaos/stack/stack.yaml; run "
        "`tradechaos stack compose -o compose/docker-compose.yml` and commit it"
    )


def test_compose_file_starts_every_service_after_what_it_needs() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    definition = reference_stack()
    for spec in definition.services:
        entry = services[spec.name]
        assert entry["network_mode"] == "host"
        assert "healthcheck" in entry
        needs = entry["depends_on"]
        assert needs["init"] == {"condition": "service_completed_successfully"}
        for dep in spec.depends_on:
            ready = f"{dep}-init" if definition.service(dep).after_healthy else dep
            assert ready in needs, f"{spec.name} does not wait for {dep}"
        for name in needs:
            assert name in services, f"{spec.name} depends on unknown compose service {name}"
    link_ports = [arg.split("=")[1] for arg in services["init"]["command"] if arg.count("=") == 2]
    assert len(link_ports) == len(definition.links) == len(set(link_ports))
    assert all(port.startswith("127.0.0.1:") for port in link_ports)
