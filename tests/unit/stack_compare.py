"""Comparing two stacks on what ``tradechaos stack import`` promises to get right: the
services (names and built-in kinds), the links and the health checks. Used by the import
tests, and by the example's own test once examples/minidex lands."""

from __future__ import annotations

from chaos.stackfile.definition import StackDefinition


def differences(
    draft: StackDefinition, expected: StackDefinition, commands: bool = False
) -> list[str]:
    """What differs between ``draft`` and ``expected`` on services, links and health
    (with ``commands``: also each service's command, env, depends_on and built-in
    parameters). Empty when they agree."""
    found: list[str] = []
    names, wanted = set(draft.service_names), set(expected.service_names)
    if names != wanted:
        found.append(f"services: {sorted(names)} != {sorted(wanted)}")
    for name in sorted(names & wanted):
        ours, theirs = draft.service(name), expected.service(name)
        if ours.builtin != theirs.builtin:
            found.append(f"{name}.builtin: {ours.builtin} != {theirs.builtin}")
        if ours.health != theirs.health:
            found.append(f"{name}.health: {ours.health} != {theirs.health}")
        if commands:
            for key in ("command", "env", "depends_on", "database", "venues", "after_healthy",
                        "setup", "stop_grace_s", "stop_signal", "build"):  # fmt: skip
                if key == "setup" and ours.builtin is not None:
                    continue  # made from database/schema (schema paths are file-relative)
                if getattr(ours, key) != getattr(theirs, key):
                    found.append(f"{name}.{key}: {getattr(ours, key)} != {getattr(theirs, key)}")
    links = {(lk.name, lk.client, lk.server) for lk in draft.links}
    expected_links = {(lk.name, lk.client, lk.server) for lk in expected.links}
    if links != expected_links:
        found.append(f"links: extra {sorted(links - expected_links)}, "
                     f"missing {sorted(expected_links - links)}")  # fmt: skip
    return found
