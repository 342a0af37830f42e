"""The operator's response (issue 21): the runbook's steps, each one request of the stack
file's ``bindings.response`` (``chaos.bindings.response.call``: directly to the first
running service of the binding that takes it).

Not faults: ``--no-faults`` keeps them (a control run rehearses the same runbook on a stack
that suffered nothing), and heal undoes none of them (a rollback stands; access stays as the
last step left it).

Each step records the stack's answer as one ``evidence`` record, the fields docs/history.md
("Response steps in faults.jsonl") describes plus ``service`` (which service took it); the
recovered-state checkers and the harm ledger read them (``chaos.history.response``). A
refusal, or no service taking the request (access changes and cancel_all are retried for a
few seconds first), is ``FaultError`` with one sentence (the run is then an error: the
runbook did not run as written), and no evidence is recorded.
- ``snapshot`` {label} (default the step's id): remembered for later steps.
- ``chain_rollback`` {to: label} sends the snapshot's label and the ``seq`` and
  ``chain_height`` its recorded answer gave (stacks that keep no snapshots roll back to
  those), or {seq, chain_height}; ``wait_s`` is ``wait``. An answer whose
  ``chain.rolled_back`` is false (the log went back, the chain did not, or not in time) is
  recorded and then fails the step.
- ``cancel_all`` {except, accounts, markets}; ``disable_access`` {reason};
  ``enable_access``; an access answer whose ``enabled`` is not what was asked fails.
- ``replay`` {seqs, kinds, rollback: the step id of an earlier chain_rollback, sent as the
  stack's id of that rollback}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaos.bindings.response import call
from chaos.errors import FaultError
from chaos.experiment.actions import ActionInfo, StepLike
from chaos.faults.base import FaultContext, RecordedFault, step_target
from chaos.faults.process import _seconds

REQUEST = {  # action -> the bindings.response request it sends
    "snapshot": "snapshot",
    "chain_rollback": "rollback",
    "cancel_all": "cancel_all",
    "disable_access": "disable_access",
    "enable_access": "enable_access",
    "replay": "replay",
}


class ResponseStep(RecordedFault):
    """One runbook step: ``_fields`` -> the request, the answer -> evidence, ``_judge``."""

    label: str = ""  # snapshot: the label it takes

    def _inject(self) -> None:
        binding = self.ctx.definition.bindings.response
        if binding is None:
            raise FaultError(f"stack {self.ctx.definition.name} declares no bindings.response")
        taken = call(
            binding,
            REQUEST[self.action],
            self._fields(),
            self.ctx.places,
            self.ctx.backend.is_running,
            pause=self.wait,
        )
        answer = {**taken.answer, "service": taken.service}
        if self.action == "snapshot":
            answer.setdefault("snapshot", self.label)
            self.ctx.runbook[f"snapshot:{self.label}"] = answer
        elif self.action == "chain_rollback":
            if self.params.get("to") is not None:
                answer.setdefault("snapshot", self.params["to"])
            self.ctx.runbook[f"rollback:{self.step_id}"] = answer
        self.evidence(**answer)
        self._judge(answer)

    def _fields(self) -> dict[str, Any]:
        p = self.params
        if self.action == "snapshot":
            return {"label": self.label}
        if self.action == "chain_rollback":
            wait = _seconds(p.get("wait"), 10.0)
            if p.get("to") is None:
                return {"seq": p.get("seq"), "chain_height": p.get("chain_height"), "wait_s": wait}
            snapshot = self._remembered(f"snapshot:{p['to']}", f"snapshot {p['to']!r}")
            return {
                "snapshot": p["to"],
                "seq": snapshot.get("seq"),
                "chain_height": snapshot.get("chain_height"),
                "wait_s": wait,
            }
        if self.action == "cancel_all":
            return {k: p.get(k) for k in ("except", "accounts", "markets")}
        if self.action == "disable_access":
            return {"reason": p.get("reason")}
        if self.action == "replay":
            rollback = None
            if p.get("rollback") is not None:
                step = str(p["rollback"])
                rollback = self._remembered(f"rollback:{step}", f"rollback step {step!r}").get(
                    "rollback"
                )
            return {"seqs": p.get("seqs"), "kinds": p.get("kinds"), "rollback": rollback}
        return {}

    def _remembered(self, key: str, what: str) -> Mapping[str, Any]:
        found = self.ctx.runbook.get(key)
        if found is None:
            raise FaultError(f"{what} has no recorded answer: its step failed or had not ended")
        return found

    def _judge(self, answer: Mapping[str, Any]) -> None:
        """FaultError when the answer says the stack did not do what was asked."""
        if self.action == "chain_rollback":
            chain = answer.get("chain")
            if isinstance(chain, Mapping) and chain.get("rolled_back") is False:
                why = chain.get("error") or "no reason given"
                raise FaultError(f"the stack rolled its log back to seq {answer.get('to_seq')} "
                                 f"but not its chain: {why}")  # fmt: skip
        elif self.action in ("disable_access", "enable_access"):
            wanted = self.action == "enable_access"
            if "enabled" in answer and answer["enabled"] is not wanted:
                raise FaultError(f"{self.action}: the stack answered enabled={answer['enabled']}")

    def _heal(self) -> dict[str, Any]:
        return {}  # the runbook is not undone


def build(
    step: StepLike, info: ActionInfo, params: dict[str, object], ctx: FaultContext
) -> RecordedFault:
    fault = ResponseStep(ctx, step.id, info.name, step_target(step.target), params)
    if info.name == "snapshot":
        label = params.get("label")
        fault.label = label if isinstance(label, str) and label else step.id
    return fault
