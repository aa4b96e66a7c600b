"""net-snmp's snmptrapd as a local trap receiver for tests and the demo.

:class:`TrapReceiver` writes an snmptrapd configuration for the given v2c
communities and v3 users, runs ``snmptrapd -f -n -Lf <file>`` on a free
loopback UDP port with numeric OIDs, and parses what it logged into
:class:`Trap` records. Each logged trap starts with a record separator and
its varbinds are split by a unit separator, so values containing tabs or line
breaks parse back exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.receivers.smtp import LOOPBACK

SNMPTRAPD = shutil.which("snmptrapd") or "/usr/sbin/snmptrapd"
START_TIMEOUT_S = 10.0
RECORD = "\x1e"
RECORD_END = "\x1d"
UNIT = "\x1f"
# Logged by snmptrapd once it listens.
READY_LINE = "NET-SNMP version"

_VARBIND = re.compile(
    r"^\.?(?P<oid>[0-9.]+) = (?:(?P<type>[A-Za-z0-9-]+): )?(?P<value>.*)$", re.S
)


@dataclass(frozen=True)
class V3User:
    """A USM user snmptrapd accepts (``engine_id`` of the sender, for traps)."""

    name: str
    auth_protocol: str = "SHA"
    auth_key: str | None = None
    priv_protocol: str = "AES"
    priv_key: str | None = None
    engine_id: str | None = None

    def create_user_line(self) -> str:
        """The snmptrapd.conf ``createUser`` line."""
        engine = f"-e 0x{self.engine_id} " if self.engine_id else ""
        line = f"createUser {engine}{self.name}"
        if self.auth_key:
            line += f" {self.auth_protocol} {self.auth_key}"
            if self.priv_key:
                line += f" {self.priv_protocol} {self.priv_key}"
        return line

    @property
    def level(self) -> str:
        """The lowest security level snmptrapd accepts from this user."""
        if self.priv_key:
            return "priv"
        return "auth" if self.auth_key else "noauth"


@dataclass(frozen=True)
class Varbind:
    """One logged varbind: numeric OID, net-snmp's type name and the value."""

    oid: str
    type: str
    value: str

    @property
    def octets(self) -> bytes:
        """The value of a STRING or Hex-STRING as the bytes that were sent."""
        if self.type == "Hex-STRING":
            return bytes.fromhex(self.value.replace("\n", " "))
        if self.type == "STRING":
            inner = self.value[1:-1] if self.value.startswith('"') else self.value
            return inner.replace('\\"', '"').replace("\\\\", "\\").encode("utf-8")
        if self.value == '""':
            return b""
        raise ValueError(f"{self.oid} is a {self.type}, not a string")

    @property
    def text(self) -> str:
        """A string value decoded as UTF-8."""
        return self.octets.decode("utf-8")

    @property
    def number(self) -> int:
        """An INTEGER, Gauge32, Counter or Timeticks value."""
        if self.type == "Timeticks":
            return int(self.value.split(")")[0].strip("("))
        return int(self.value.split()[0])


@dataclass(frozen=True)
class Trap:
    """One notification as snmptrapd logged it."""

    security: str
    varbinds: list[Varbind] = field(default_factory=list)

    def get(self, oid: str) -> Varbind:
        """The varbind with ``oid`` (numeric, without a leading dot)."""
        return next(v for v in self.varbinds if v.oid == oid)


class TrapReceiver:
    """snmptrapd on 127.0.0.1 and a free UDP port, logging to a file."""

    def __init__(
        self,
        directory: Path,
        *,
        communities: tuple[str, ...] = ("public",),
        users: tuple[V3User, ...] = (),
        port: int | None = None,
        ipv6: bool = False,
    ) -> None:
        """Write the configuration into ``directory``; :meth:`start` runs it.

        ``ipv6`` also listens on ``[::1]`` at the same port.
        """
        self.directory = directory
        self.port = port or free_udp_port()
        self._listen = f"udp:{LOOPBACK}:{self.port}"
        if ipv6:
            self._listen += f",udp6:[::1]:{self.port}"
        self.log_file = directory / "traps.log"
        directory.mkdir(parents=True, exist_ok=True)
        self._config = directory / "snmptrapd.conf"
        self._config.write_text(_config_text(communities, users))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> TrapReceiver:
        """Start snmptrapd and wait until it listens."""
        environment = dict(
            os.environ, SNMP_PERSISTENT_DIR=str(self.directory / "state")
        )
        # %V takes the next character as the varbind separator.
        log_format = f"{RECORD}%P{UNIT}%V{UNIT}%v{RECORD_END}\n"
        self._process = subprocess.Popen(
            [
                SNMPTRAPD,
                "-f",
                "-n",
                "-C",
                "-c",
                str(self._config),
                "-Lf",
                str(self.log_file),
                "-On",
                "-M",
                "/dev/null",
                "-m",
                "",
                "-F",
                log_format,
                self._listen,
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY_LINE not in self._log_text():
            if self._process.poll() is not None or time.monotonic() > deadline:
                error = (
                    self._process.stderr.read().decode() if self._process.stderr else ""
                )
                raise RuntimeError(
                    f"snmptrapd did not start: {error}{self._log_text()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop snmptrapd."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def traps(self) -> list[Trap]:
        """Every notification logged so far, oldest first."""
        records = self._log_text().split(RECORD)[1:]
        # Other log lines (e.g. a USM error) may follow a record's end marker.
        return [_parse(record.partition(RECORD_END)[0]) for record in records]

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Trap]:
        """Wait until ``count`` notifications were logged (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while len(self.traps()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.traps()

    def _log_text(self) -> str:
        if not self.log_file.exists():
            return ""
        return self.log_file.read_bytes().decode("utf-8", errors="replace")


def _config_text(communities: tuple[str, ...], users: tuple[V3User, ...]) -> str:
    lines = [f"authCommunity log {community}" for community in communities]
    for user in users:
        lines.append(user.create_user_line())
        lines.append(f"authUser log {user.name} {user.level}")
    return "\n".join(lines) + "\n"


def _parse(record: str) -> Trap:
    security, _, varbinds = record.partition(UNIT)
    parsed = []
    for text in varbinds.split(UNIT):
        match = _VARBIND.match(text.strip("\n"))
        if match:
            parsed.append(
                Varbind(
                    match["oid"].lstrip("."),
                    match["type"] or "",
                    match["value"].strip(),
                )
            )
    return Trap(security, parsed)


def free_udp_port() -> int:
    """A UDP port on loopback that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def main() -> None:
    """Run snmptrapd in the foreground, one JSON line per notification."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=16162)
    parser.add_argument("--community", action="append", default=[])
    parser.add_argument(
        "--v3-user",
        action="append",
        default=[],
        help="name:auth_key:priv_key[:engine_id hex] (SHA and AES)",
    )
    args = parser.parse_args()
    # SIGTERM stops it like Ctrl-C, so the peer it started is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    users = tuple(_user(spec) for spec in args.v3_user)
    with tempfile.TemporaryDirectory() as scratch:
        communities = tuple(args.community) or ("public",)
        receiver = TrapReceiver(
            Path(scratch), communities=communities, users=users, port=args.port
        ).start()
        print(f"listening on udp {LOOPBACK}:{receiver.port}", flush=True)
        _follow(receiver)


def _user(spec: str) -> V3User:
    name, auth_key, priv_key, *engine = spec.split(":")
    return V3User(name, "SHA", auth_key, "AES", priv_key, engine[0] if engine else None)


def _follow(receiver: TrapReceiver) -> None:
    shown = 0
    try:
        while True:
            for trap in receiver.traps()[shown:]:
                varbinds = {v.oid: f"{v.type}: {v.value}" for v in trap.varbinds}
                print(json.dumps({"security": trap.security, "varbinds": varbinds}))
                shown += 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
