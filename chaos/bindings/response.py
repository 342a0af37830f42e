"""The response binding at work: one operator request of the runbook (snapshot, rollback,
cancel_all, access, replay) sent to the stack (docs/stack-file.md, "response").

``call(binding, name, fields, places, running)`` renders the request ``name`` with the
step's ``fields`` and sends it directly (not through a link: a faulted client link must not
block the response) to each running service of ``binding.services`` in turn:
- a 2xx answer holding a JSON object is the answer (``answer`` paths set over it);
- a 503, or a transport error, moves on to the next service (a standby answers 503; so
  does a leader that cannot tell whether its write happened);
- any other answer is a refusal: ``Refused`` naming the service, the request and the
  stack's reason; nothing is tried after it.
When no service took it, a request that does no harm when repeated (``RETRIED``: access
changes, cancel_all) is tried again, round after round, for ``RETRY_S`` (an operator
retries; e.g. a sequencer whose database connection a migration just cut answers its first
write with 503). Then, or at once for the others (a snapshot, a rollback or a replay whose
outcome is unknown must not be repeated blindly), ``NotTaken`` says what each one answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chaos.bindings.client import BindingError, send
from chaos.bindings.http import MISSING, Rendered, get, parse_json, render
from chaos.bindings.places import Places
from chaos.errors import FaultError
from chaos.stackfile.bindings import ResponseBinding, ResponseRequest

ROLLBACK_MARGIN_S = 10.0  # a rollback's answer waits wait_s for the chain: allow that and more
RETRIED = frozenset({"disable_access", "enable_access", "cancel_all"})
RETRY_S = 5.0
RETRY_EVERY_S = 0.25


class Refused(FaultError):
    """The stack answered the request with a refusal (a 4xx, or a non-503 error)."""


class NotTaken(FaultError):
    """No service of the binding took the request (each one 503, down or unreachable)."""


@dataclass(frozen=True)
class Taken:
    service: str  # the service that answered
    answer: dict[str, Any]  # its JSON answer, with the binding's ``answer`` fields set


def request_of(binding: ResponseBinding, name: str) -> ResponseRequest:
    found = binding.get(name)
    if found is None:
        raise FaultError(f"the stack file declares no bindings.response.{name}")
    return found


def call(
    binding: ResponseBinding,
    name: str,
    fields: Mapping[str, Any],
    places: Places,
    running: Callable[[str], bool],
    timeout_s: float | None = None,
    pause: Callable[[float], None] = time.sleep,
) -> Taken:
    """Send request ``name`` with ``fields`` (see the module); ``timeout_s`` per service
    (default the request's own, for a rollback at least its ``wait_s`` plus a margin);
    ``pause`` waits between rounds of retries (a fault passes its cancellable wait)."""
    template = request_of(binding, name)
    rendered = render(template.request, fields)
    if timeout_s is None:
        timeout_s = template.request.timeout_s
        wait = fields.get("wait_s")
        if isinstance(wait, int | float):
            timeout_s = max(timeout_s, float(wait) + ROLLBACK_MARGIN_S)
    deadline = time.monotonic() + (RETRY_S if name in RETRIED else 0.0)
    rounds = 0
    while True:
        rounds += 1
        taken, tried = _round(binding, name, template, rendered, places, running, timeout_s)
        if taken is not None:
            return taken
        if time.monotonic() >= deadline:
            again = f" (tried {rounds} times in {RETRY_S:g} s)" if rounds > 1 else ""
            raise NotTaken(f"no service of bindings.response took {name}{again}: "
                           f"{'; '.join(tried)}")  # fmt: skip
        pause(RETRY_EVERY_S)


def _round(
    binding: ResponseBinding,
    name: str,
    template: ResponseRequest,
    rendered: Rendered,
    places: Places,
    running: Callable[[str], bool],
    timeout_s: float,
) -> tuple[Taken | None, list[str]]:
    """One try of each service in turn: the one that took it, or what each one said."""
    tried: list[str] = []
    for service in binding.services:
        if not places.definition.has_service(service) or not running(service):
            tried.append(f"{service}: not running")
            continue
        try:
            status, text = send(places.url(service), rendered, timeout_s)
        except BindingError as err:
            tried.append(f"{service}: {err}")
            continue
        document = parse_json(text)
        if 200 <= status < 300 and isinstance(document, dict):
            return Taken(service, _mapped(document, template.answer)), tried
        reason = _reason(document, text)
        if status == 503:
            tried.append(f"{service}: HTTP 503 {reason}".rstrip())
            continue
        if 200 <= status < 300:
            raise Refused(f"{service} answered {name} with no JSON object: {text.strip()[:200]}")
        raise Refused(f"{service} refused {name} ({rendered.describe()}): HTTP {status} {reason}")
    return None, tried


def _mapped(document: dict[str, Any], answer: Mapping[str, str]) -> dict[str, Any]:
    out = dict(document)
    for history_field, path in answer.items():
        value = get(document, path)
        if value is not MISSING:
            out[history_field] = value
    return out


def _reason(document: Any, text: str) -> str:
    if isinstance(document, dict):
        for key in ("error", "reason", "message"):
            if document.get(key):
                return str(document[key])[:300]
    return text.strip()[:300]
