"""Venue data faults on the built-in venues: freeze, zero, scale, offset, drop.

Injected with ``POST /admin/fault`` on the venues service (the step's target, default the
stack's built-in venues service; directly, not through a link) and healed with
``DELETE /admin/fault/{id}``. Evidence: the fault id and the venues' quotes right after
injection (``GET /prices``), e.g. zeros for ``zero``.
"""

from __future__ import annotations

from typing import Any

from chaos.errors import FaultError
from chaos.experiment.actions import ActionInfo, StepLike
from chaos.faults import http
from chaos.faults.base import FaultContext, RecordedFault, step_target


class FeedFault(RecordedFault):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fault_id: str | None = None

    @property
    def feeds_url(self) -> str:
        assert self.target
        return self.ctx.backend.endpoint(self.target[0]).url

    def _inject(self) -> None:
        venue = self.params.get("venue")
        body: dict[str, Any] = {
            "venue": "*" if venue is None else venue,
            "market": self.params.get("market") or "*",
            "kind": self.params["kind"],
        }
        if self.params.get("value") is not None:
            body["value"] = self.params["value"]
        answer = http.call("POST", f"{self.feeds_url}/admin/fault", body)
        self.fault_id = str(answer["id"]) if isinstance(answer, dict) else str(answer)
        try:
            quotes: Any = http.call("GET", f"{self.feeds_url}/prices")
        except Exception as err:  # evidence is best-effort
            quotes = {"error": str(err)}
        self.evidence(fault_id=self.fault_id, request=body, quotes=quotes)

    def _heal(self) -> dict[str, Any]:
        if self.fault_id is None:
            return {}
        http.call("DELETE", f"{self.feeds_url}/admin/fault/{self.fault_id}")
        healed, self.fault_id = self.fault_id, None
        return {"fault_id": healed}


def build(
    step: StepLike, info: ActionInfo, params: dict[str, object], ctx: FaultContext
) -> RecordedFault:
    return FeedFault(ctx, step.id, info.name, step_target(step.target) or venues_of(ctx), params)


def venues_of(ctx: FaultContext) -> list[str]:
    """The stack's built-in venues services (the world's), or FaultError when it has none."""
    found = list(ctx.definition.builtins("venues"))
    if not found:
        raise FaultError(f"stack {ctx.definition.name} has no builtin venues service")
    return found
