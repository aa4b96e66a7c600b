"""The pipeline's services as separate ``switchboard`` processes.

:class:`Pipeline` starts the API, the outbox relay, the router, the deliverers
and the recorder, each its own process with its own log file, all on
loopback with private targets allowed and the given retry tiers. It stops them
with SIGTERM (SIGKILL after a grace period), and lets a test kill one with
SIGKILL and start it again. :class:`Supervisor` restarts any that exits, for a
pipeline left running.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

STOP_GRACE_S = 20.0
API_START_TIMEOUT_S = 60.0
SWITCHBOARD = str(Path(sys.executable).parent / "switchboard")
# A service that exits sooner than this after a (re)start is failing, not
# crashing now and then: restart it after a doubling pause instead of at once.
QUICK_EXIT_S = 10.0
RESTART_PAUSE_MAX_S = 60.0
# Services that serve Prometheus metrics when given a port (the API does not),
# besides the deliverers.
METRICS_SERVICES = ("relay", "router", "recorder")


class ServiceExited(RuntimeError):
    """A service of the pipeline exited on its own."""

    def __init__(self, service: ServiceProcess) -> None:
        """Name the service, how it ended and where its log is."""
        self.service = service
        super().__init__(
            f"the {service.name} process {service.exit_description()}; "
            f"its log: {service.log_path}"
        )


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ServiceProcess:
    """One ``switchboard <command>`` process and its log file."""

    name: str
    arguments: list[str]
    environment: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    def start(self) -> ServiceProcess:
        """Start the process, appending to its log file."""
        self.started_at = time.monotonic()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [SWITCHBOARD, *self.arguments],
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a Ctrl-C at the terminal reaches the
                # demo only, which then stops everything in order.
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def exit_description(self) -> str:
        """How the process ended, e.g. ``was killed by SIGKILL``."""
        status = None if self.process is None else self.process.poll()
        if status is None:
            return "is running"
        if status < 0:
            try:
                return f"was killed by {signal.Signals(-status).name}"
            except ValueError:
                return f"was killed by signal {-status}"
        return f"exited with status {status}"

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a grace period; returns the exit status."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> ServiceProcess:
        """Start again after :meth:`stop` or :meth:`kill`."""
        return self.start()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, for failure messages."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


@dataclass
class Pipeline:
    """API, relay, router, deliverers and recorder as processes (module docstring)."""

    log_dir: Path
    environment: dict[str, str]
    deliverer_groups: list[list[str]]
    api_port: int = field(default_factory=free_port)
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    # Where each service serves /metrics; empty when metrics are off.
    metrics_ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        log_dir: Path,
        settings_env: dict[str, str],
        channel_types: Iterable[str],
        one_deliverer: bool = True,
        metrics: bool = False,
    ) -> Pipeline:
        """A pipeline whose processes see ``settings_env`` on top of ours.

        With ``metrics``, each service serves /metrics on a port of its own
        (:attr:`metrics_ports`); without, none does, even if the environment
        names a metrics port, which every process would otherwise try to take.
        """
        environment = dict(os.environ)
        environment.update(settings_env)
        environment["SWITCHBOARD_ALLOW_PRIVATE_TARGETS"] = "true"
        # Kept across restarts, so a restarted router fences the transaction
        # its killed predecessor left open instead of waiting for it to time out.
        environment.setdefault(
            "SWITCHBOARD_ROUTER_TRANSACTIONAL_ID",
            f"switchboard.router.demo-{uuid.uuid4().hex[:8]}",
        )
        types = list(channel_types)
        groups = [types] if one_deliverer else [[t] for t in types]
        log_dir.mkdir(parents=True, exist_ok=True)
        pipeline = cls(log_dir, environment, groups)
        if metrics:
            names = [*METRICS_SERVICES, *(_deliverer_name(groups, t) for t in groups)]
            pipeline.metrics_ports = {name: free_port() for name in names}
        return pipeline

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> Pipeline:
        """Start every process; returns once the API answers."""
        self._add("api", ["api", "--port", str(self.api_port), "--no-relay"])
        self._add("relay", ["relay"])
        self._add("router", ["router"])
        for types in self.deliverer_groups:
            self._add(
                _deliverer_name(self.deliverer_groups, types),
                ["deliverer", "--type", ",".join(types)],
            )
        self._add("recorder", ["recorder"])
        self.wait_for_api()
        self.check()
        return self

    def _add(self, name: str, arguments: list[str]) -> None:
        log_path = self.log_dir / f"{name}.log"
        environment = dict(self.environment)
        environment["SWITCHBOARD_METRICS_PORT"] = str(self.metrics_ports.get(name, 0))
        self.services[name] = ServiceProcess(
            name, arguments, environment, log_path
        ).start()

    def wait_for_api(self) -> None:
        """Wait until the API answers its health check."""
        deadline = time.monotonic() + API_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.services["api"].running:
                raise ServiceExited(self.services["api"])
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(
            "the API did not answer:\n" + self.services["api"].log_tail()
        )

    def dead(self) -> list[str]:
        """Names of processes that exited on their own."""
        return [name for name, service in self.services.items() if not service.running]

    def check(self) -> None:
        """Raise :class:`ServiceExited` for the first process that exited."""
        for service in self.services.values():
            if not service.running:
                raise ServiceExited(service)

    def stop(self) -> None:
        """Stop every process, the API last so late jobs stay readable till the end."""
        order = [n for n in self.services if n != "api"] + ["api"]
        for name in order:
            if name in self.services:
                self.services[name].stop()

    def __enter__(self) -> Pipeline:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        """Stop on leaving the block."""
        self.stop()


def _deliverer_name(groups: list[list[str]], types: list[str]) -> str:
    """``deliverer`` when one serves every type, else ``deliverer-<type>``."""
    return "deliverer" if len(groups) == 1 else f"deliverer-{types[0]}"


class Supervisor:
    """Restarts the services of a running pipeline that exit, each with its log.

    Call :meth:`step` every second or so. Each exit is reported in one line
    through ``report``; a service that keeps exiting soon after its start is
    restarted after a pause that doubles each time, up to a minute.
    """

    def __init__(self, pipeline: Pipeline, report: Callable[[str], None]) -> None:
        """Watch ``pipeline``'s services; ``report`` prints one line."""
        self.pipeline = pipeline
        self.report = report
        self.restarts: dict[str, int] = {}
        self._pause_s: dict[str, float] = {}
        self._due: dict[str, float] = {}

    def step(self) -> None:
        """Notice services that exited and restart those whose pause is over."""
        now = time.monotonic()
        for name, service in self.pipeline.services.items():
            if service.running:
                continue
            if name not in self._due:
                self._due[name] = now + self._pause(name, now - service.started_at)
                pause = self._due[name] - now
                when = f" in {pause:.0f}s" if pause else ""
                self.report(
                    f"{name} {service.exit_description()}; restarting it{when} "
                    f"(log: {service.log_path})"
                )
            if now >= self._due[name]:
                del self._due[name]
                service.restart()
                self.restarts[name] = self.restarts.get(name, 0) + 1

    def _pause(self, name: str, ran_s: float) -> float:
        if ran_s >= QUICK_EXIT_S:
            self._pause_s.pop(name, None)
            return 0.0
        pause = min(max(self._pause_s.get(name, 0.0) * 2, 1.0), RESTART_PAUSE_MAX_S)
        self._pause_s[name] = pause
        return pause
