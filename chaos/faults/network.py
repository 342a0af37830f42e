"""Network faults, driven through the Toxiproxy HTTP API (our proxy or a real Toxiproxy).

A target is a link name (a proxy), a service (every link with it at either end) or a list
of those. Toxics are named ``tc-<step id>-<type>-<stream>`` so that heal removes exactly
the toxics its fault added and nothing else; ``down`` and ``partition`` disable proxies
(``enabled: false``: the listener refuses connections and open ones are cut).

Evidence: the toxics in place on each link after inject, the proxy counters (connections,
bytes, resets, times each toxic applied) when the proxy serves ``/proxies/{name}/stats``,
and for flapping the number of bad periods.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from chaos.errors import FaultError
from chaos.experiment.actions import ActionInfo, StepLike, parse_params
from chaos.experiment.params import StepError
from chaos.faults.base import FaultContext, ProxyControl, RecordedFault, step_target
from chaos.stackfile.definition import StackDefinition

STREAMS = {
    "upstream": ("upstream",),
    "downstream": ("downstream",),
    "both": ("upstream", "downstream"),
}


def resolve_links(definition: StackDefinition, names: Sequence[str]) -> list[str]:
    """Link names for ``names`` (links, or services meaning all their links), in order."""
    links = {lk.name for lk in definition.links}
    resolved: list[str] = []
    for name in names:
        found = [name] if name in links else [lk.name for lk in definition.links_of(name)]
        if not found:
            raise StepError("target", f"{name!r} is neither a link nor a service with links")
        resolved += [lk for lk in found if lk not in resolved]
    return resolved


def links_between(
    definition: StackDefinition, left: Sequence[str], right: Sequence[str]
) -> list[str]:
    """Every link with one end in ``left`` and the other in ``right``."""
    a, b = set(left), set(right)
    return [
        lk.name
        for lk in definition.links
        if (lk.client in a and lk.server in b) or (lk.client in b and lk.server in a)
    ]


def toxic_attributes(action: str, params: Mapping[str, object]) -> dict[str, int]:
    """Toxiproxy attributes (integers: ms, KB/s, bytes, µs) for a toxic action."""

    def ms(key: str) -> int:
        return round(float(_num(params[key])) * 1000)

    if action == "latency":
        return {"latency": ms("latency"), "jitter": ms("jitter")}
    if action == "bandwidth":
        return {"rate": int(_num(params["rate"]))}
    if action in ("timeout", "reset_peer"):
        return {"timeout": ms("timeout")}
    if action == "slicer":
        return {
            "average_size": int(_num(params["average_size"])),
            "size_variation": int(_num(params["size_variation"])),
            "delay": round(float(_num(params["delay"])) * 1_000_000),
        }
    if action == "limit_data":
        return {"bytes": int(_num(params["bytes"]))}
    if action == "slow_close":
        return {"delay": ms("delay")}
    raise ValueError(f"{action!r} is not a toxic")


def _num(value: object) -> float:
    assert isinstance(value, int | float)
    return float(value)


def proxy_stats(proxy: ProxyControl, link: str) -> dict[str, Any] | None:
    """The proxy's counters for ``link``, or None where the proxy has no stats (Toxiproxy)."""
    try:
        return dict(proxy.stats(link))
    except Exception:  # a real Toxiproxy has no /stats: evidence is best-effort
        return None


class LinkOp:
    """One network disturbance on a set of links: ``apply`` it, ``remove`` it (idempotent)."""

    def __init__(
        self,
        proxy: ProxyControl,
        links: Sequence[str],
        action: str,
        params: Mapping[str, object],
        tag: str,
    ) -> None:
        self.proxy = proxy
        self.links = list(links)
        self.action = action
        self.params = dict(params)
        self.tag = tag
        self.applied: set[str] = set()

    def toxic_names(self) -> list[tuple[str, str]]:
        direction = str(self.params.get("direction", "both"))
        return [(f"{self.tag}-{self.action}-{s}", s) for s in STREAMS[direction]]

    def apply(self) -> None:
        for link in self.links:
            self.applied.add(link)
            try:
                if self.action in ("down", "partition"):
                    self.proxy.update(link, enabled=False)
                    continue
                for name, stream in self.toxic_names():
                    self.proxy.add_toxic(
                        link,
                        name,
                        self.action,
                        stream,
                        float(_num(self.params.get("toxicity", 1.0))),
                        toxic_attributes(self.action, self.params),
                    )
            except FaultError:
                raise
            except Exception as err:
                raise FaultError(f"could not apply {self.action} to link {link}: {err}") from err

    def remove(self) -> list[str]:
        """Undo on every link touched; returns the problems met (empty when clean)."""
        problems: list[str] = []
        for link in sorted(self.applied):
            try:
                if self.action in ("down", "partition"):
                    self.proxy.update(link, enabled=True)
                else:
                    present = {str(t.get("name")) for t in self.proxy.toxics(link)}
                    for name, _ in self.toxic_names():
                        if name in present:
                            self.proxy.remove_toxic(link, name)
                self.applied.discard(link)
            except Exception as err:  # keep healing the other links
                problems.append(f"{link}: {err}")
        return problems

    def snapshot(self) -> dict[str, Any]:
        """What the proxy reports for each link: enabled, our toxics, counters."""
        state: dict[str, Any] = {}
        for link in self.links:
            try:
                info = self.proxy.get(link)
                ours = [
                    t
                    for t in self.proxy.toxics(link)
                    if str(t.get("name", "")).startswith(self.tag)
                ]
                state[link] = {
                    "enabled": info.get("enabled"),
                    "toxics": ours,
                    "stats": proxy_stats(self.proxy, link),
                }
            except Exception as err:
                state[link] = {"error": str(err)}
        return state


class NetworkFault(RecordedFault):
    """A toxic, ``down`` or ``partition`` held from inject to heal."""

    def __init__(
        self,
        ctx: FaultContext,
        step_id: str,
        action: str,
        target: list[str] | None,
        params: Mapping[str, object],
        op: LinkOp,
    ) -> None:
        super().__init__(ctx, step_id, action, target, params)
        self.op = op

    def _inject(self) -> None:
        before = {lk: proxy_stats(self.op.proxy, lk) for lk in self.op.links}
        self.op.apply()
        self.evidence(links=self.op.links, stats_before=before, after=self.op.snapshot())

    def _heal(self) -> dict[str, Any]:
        after = self.op.snapshot() if self.op.applied else {}
        problems = self.op.remove()
        if problems:
            raise FaultError(f"heal of {self.action} left links dirty: {'; '.join(problems)}")
        return {"links": self.op.links, "before_heal": after}


class FlapFault(RecordedFault):
    """An inner ``LinkOp`` on for ``period * bad_fraction``, off for the rest, repeatedly,
    from inject (starting bad) until heal, in a background thread."""

    def __init__(
        self,
        ctx: FaultContext,
        step_id: str,
        target: list[str] | None,
        params: Mapping[str, object],
        op: LinkOp,
    ) -> None:
        super().__init__(ctx, step_id, "flap", target, params)
        self.op = op
        self.bad_periods = 0
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    def _inject(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"flap-{self.step_id}", daemon=True)
        self._thread.start()
        self.evidence(links=self.op.links, inner=self.op.action, started=True)

    def _loop(self) -> None:
        period = _num(self.params["period"])
        bad = period * _num(self.params["bad_fraction"])
        try:
            while not self.cancelled:
                if bad > 0:
                    self.op.apply()
                    self.bad_periods += 1
                    if self._cancel.wait(bad):
                        break
                    self.op.remove()
                if self._cancel.wait(period - bad):
                    break
        except Exception as err:  # recorded at heal; the link is cleaned there
            self._error = str(err)

    def _heal(self) -> dict[str, Any]:
        if self._thread is not None:
            self._thread.join(timeout=30.0)
        problems = self.op.remove()
        if problems:
            raise FaultError(f"heal of flap left links dirty: {'; '.join(problems)}")
        evidence: dict[str, Any] = {
            "bad_periods": self.bad_periods,
            "links": self.op.links,
            "stats": {lk: proxy_stats(self.op.proxy, lk) for lk in self.op.links},
        }
        if self._error:
            evidence["error"] = self._error
        return evidence


def _inner_op(
    ctx: FaultContext, tag: str, step_targets: list[str] | None, inner: Mapping[str, object]
) -> LinkOp:
    action = str(inner["action"])
    rest = {k: v for k, v in inner.items() if k not in ("action", "target")}
    parsed = parse_params(action, rest)
    if action == "partition":
        links = links_between(ctx.definition, _names(parsed["between"]), _names(parsed["and"]))
    else:
        names = step_target(inner.get("target")) or step_targets  # type: ignore[arg-type]
        if not names:
            raise StepError("target", "flap needs a target (on the step or in its fault)")
        links = resolve_links(ctx.definition, names)
    return LinkOp(ctx.proxy, links, action, parsed, tag)


def _names(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(v) for v in value]


def build(
    step: StepLike, info: ActionInfo, params: dict[str, object], ctx: FaultContext
) -> RecordedFault:
    targets = step_target(step.target)
    tag = f"tc-{step.id}"
    if info.name == "flap":
        inner = params["fault"]
        assert isinstance(inner, Mapping)
        return FlapFault(ctx, step.id, targets, params, _inner_op(ctx, tag, targets, inner))
    if info.name == "partition":
        links = links_between(ctx.definition, _names(params["between"]), _names(params["and"]))
        if not links:
            raise StepError("and", "no link runs between these two sets of services")
    else:
        links = resolve_links(ctx.definition, targets or [])
    op = LinkOp(ctx.proxy, links, info.name, params, tag)
    return NetworkFault(ctx, step.id, info.name, targets, params, op)
