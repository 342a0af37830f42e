"""A Backend for a stack this process did not start (``tradechaos stack up`` did): for
game-day faults by hand (``tradechaos fault ...``).

When the stack file names the owner's control API (``control_url``, served by ``stack up``:
``chaos.backends.control``), every process operation is done by the owner: start, stop,
kill, restart, pause, resume, throttle, link upstreams. Without it (an older owner) this
process signals each service's process group itself (services are group leaders) and runs
a throttle's stop/continue duty cycle; ``start`` then waits for the owner (or an operator)
to bring the service back and raises ``FaultError`` at the timeout. ``add_service`` (a
database migration) needs the runner: it is not possible here.

The stack file is read on every call, so pids replaced by the owner are seen.

Stack file (tolerant reader): ``{"toxiproxy_url", "run_dir"?, "standby"?, "services":
{name: {"endpoint": "host:port", "pid": int, "site"?: str}}, "links": {name: "host:port"
| {"listen": "host:port"}}}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from chaos.backends.base import Endpoint, ServiceStatus
from chaos.errors import BadInput, FaultError
from chaos.stackfile.definition import ServiceSpec, StackDefinition

DUTY_PERIOD_S = 0.1


def _endpoint(text: str) -> Endpoint:
    host, _, port = text.rpartition(":")
    return Endpoint(host or "127.0.0.1", int(port))


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return raw[raw.rindex(")") + 2] != "Z"


class AttachedBackend:
    name = "attached"

    def __init__(self, stack_file: Path, definition: StackDefinition) -> None:
        self.stack_file = stack_file
        self.definition = definition
        self._duty: dict[str, threading.Event] = {}
        control_url = self.stack_data().get("control_url")  # fails early on a bad file
        self.control: Any = None
        if control_url:
            from chaos.backends.control import ControlClient

            self.control = ControlClient(str(control_url))

    def _owner_status(self, service: str) -> dict[str, Any] | None:
        for entry in self.control.status():
            if entry.get("name") == service:
                return dict(entry)
        return None

    def stack_data(self) -> dict[str, Any]:
        return self.read_record(self.stack_file)

    @staticmethod
    def read_record(path: Path) -> dict[str, Any]:
        """The running stack's record (``current-stack.json``); BadInput when unusable."""
        try:
            loaded = json.loads(path.read_text())
        except FileNotFoundError:
            raise BadInput(
                f"{path}: no running stack; start one with `tradechaos stack up`"
            ) from None
        except (OSError, ValueError) as err:
            raise BadInput(f"{path}: unreadable stack record ({err})") from None
        if not isinstance(loaded, dict):
            raise BadInput(f"{path}: not a JSON object")
        return loaded

    def _service(self, service: str) -> dict[str, Any]:
        services = self.stack_data().get("services") or {}
        entry = services.get(service)
        if not isinstance(entry, dict):
            known = ", ".join(sorted(services)) or "none"
            raise BadInput(f"unknown service {service!r} (known: {known})")
        return entry

    # -- queries ---------------------------------------------------------------------------
    def pid(self, service: str) -> int | None:
        if self.control is not None:
            entry = self._owner_status(service)
            if entry is None:
                raise BadInput(f"unknown service {service!r}")
            return int(entry["pid"]) if entry.get("running") and entry.get("pid") else None
        pid = self._service(service).get("pid")
        return int(pid) if isinstance(pid, int) and _alive(pid) else None

    def is_running(self, service: str) -> bool:
        return self.pid(service) is not None

    def endpoint(self, service: str) -> Endpoint:
        if self.control is not None:
            owned = self._owner_status(service)
            if owned is not None and owned.get("endpoint"):
                return _endpoint(str(owned["endpoint"]))
        entry = self._service(service)
        return _endpoint(str(entry.get("endpoint") or entry.get("listen")))

    def link_endpoint(self, link: str) -> Endpoint:
        links = self.stack_data().get("links") or {}
        entry = links.get(link)
        if isinstance(entry, dict):
            entry = entry.get("listen") or entry.get("endpoint")
        if not isinstance(entry, str):
            raise BadInput(f"unknown link {link!r} (known: {', '.join(sorted(links))})")
        return _endpoint(entry)

    @property
    def toxiproxy_url(self) -> str:
        return str(self.stack_data()["toxiproxy_url"])

    def status(self) -> list[ServiceStatus]:
        result = []
        for spec in self.definition.services:
            try:
                pid = self.pid(spec.name)
                endpoint: Endpoint | None = self.endpoint(spec.name)
            except BadInput:
                pid, endpoint = None, None
            result.append(
                ServiceStatus(spec.name, pid is not None, pid is not None, pid, endpoint, spec.site)
            )
        return result

    def logs(self, service: str, tail: int = 50) -> str:
        run_dir = self.stack_data().get("run_dir")
        if not run_dir:
            return ""
        path = Path(str(run_dir)) / "logs" / f"{service}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-tail:])
        except OSError:
            return ""

    # -- signals ---------------------------------------------------------------------------
    def signal(self, service: str, signum: int) -> None:
        if self.control is not None:
            self.control.call(service, "signal", signum=int(signum))
            return
        pid = self.pid(service)
        if pid is None:
            raise FaultError(f"cannot signal {service}: it is not running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)

    def kill(self, service: str) -> None:
        if self.control is not None:
            self.control.call(service, "kill")
            return
        self._stop_duty(service)
        if self.is_running(service):
            self.signal(service, signal.SIGKILL)
            self._wait_gone(service, 5.0)

    def stop(self, service: str, grace_s: float | None = None) -> None:
        if self.control is not None:
            self.control.call(service, "stop", grace_s=grace_s)
            return
        self._stop_duty(service)
        if not self.is_running(service):
            return
        self.signal(service, signal.SIGTERM)
        self.signal(service, signal.SIGCONT)
        if not self._wait_gone(service, 5.0 if grace_s is None else grace_s):
            self.kill(service)

    def _wait_gone(self, service: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.is_running(service):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def pause(self, service: str) -> None:
        if self.control is not None:
            self.control.call(service, "pause")
            return
        self.signal(service, signal.SIGSTOP)

    def resume(self, service: str) -> None:
        if self.control is not None:
            self.control.call(service, "resume")
            return
        self.signal(service, signal.SIGCONT)

    def throttle(self, service: str, cpu_fraction: float | None) -> None:
        if self.control is not None:
            self.control.call(service, "throttle", cpu_fraction=cpu_fraction)
            return
        self._stop_duty(service)
        if cpu_fraction is None or cpu_fraction >= 1.0:
            return
        stop = threading.Event()
        self._duty[service] = stop
        on, off = DUTY_PERIOD_S * cpu_fraction, DUTY_PERIOD_S * (1.0 - cpu_fraction)

        def cycle() -> None:
            try:
                while not stop.is_set():
                    self.signal(service, signal.SIGSTOP)
                    if stop.wait(off):
                        break
                    self.signal(service, signal.SIGCONT)
                    stop.wait(on)
            except FaultError:
                return
            finally:
                if self.is_running(service):
                    self.signal(service, signal.SIGCONT)

        threading.Thread(target=cycle, name=f"throttle-{service}", daemon=True).start()

    def _stop_duty(self, service: str) -> None:
        stop = self._duty.pop(service, None)
        if stop is not None:
            stop.set()
            if self.is_running(service):
                self.signal(service, signal.SIGCONT)

    # -- lifecycle needs the owner -----------------------------------------------------------
    def wait_healthy(self, service: str, timeout_s: float = 30.0) -> None:
        if self.control is not None:
            self.control.call(service, "wait_healthy", timeout_s=timeout_s)
            return
        import requests

        url = f"{self.endpoint(service).url}/health"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=1.0).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise FaultError(f"{service} did not become healthy within {timeout_s:g}s at {url}")

    def start(self, service: str, timeout_s: float = 30.0) -> None:
        if self.control is not None:
            self.control.call(service, "start", timeout_s=timeout_s)
            return
        if self.is_running(service):
            return
        deadline = time.monotonic() + timeout_s
        while not self.is_running(service):
            if time.monotonic() >= deadline:
                raise FaultError(
                    f"{service} is down and only the process that ran `tradechaos stack up` "
                    "can start it; restart the stack or use `pause`/`restart` there"
                )
            time.sleep(0.1)
        self.wait_healthy(service, max(0.1, deadline - time.monotonic()))

    def restart(self, service: str, downtime_s: float = 0.0, timeout_s: float = 30.0) -> None:
        if self.control is not None:
            self.control.call(service, "restart", downtime_s=downtime_s, timeout_s=timeout_s)
            return
        self.stop(service)
        time.sleep(downtime_s)
        self.start(service, timeout_s)

    def add_service(self, spec: ServiceSpec, timeout_s: float = 30.0) -> Endpoint:
        raise FaultError(f"cannot add {spec.name}: only `tradechaos stack up` can start services")

    def set_link_upstream(self, link: str, upstream: Endpoint) -> None:
        if self.control is not None:
            self.control.set_link_upstream(link, upstream)
            return
        from chaos.proxy.client import ToxiproxyClient

        ToxiproxyClient(self.toxiproxy_url).update(link, upstream=str(upstream))

    def start_stack(self) -> None:
        raise FaultError("the stack is owned by `tradechaos stack up`")

    def stop_stack(self) -> None:
        for service in list(self._duty):
            self._stop_duty(service)
