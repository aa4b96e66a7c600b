"""The local development stack: Kafka (KRaft), PostgreSQL and Mosquitto, no Docker.

``up`` first checks every managed component (its ports free, its programs
installed) and starts none if one cannot start, so a port conflict never leaves
half a stack running. Then it starts each managed component, records its pid in
the state folder and waits until it answers; ``down`` stops exactly the
processes it recorded. A component left out of ``SWITCHBOARD_STACK_COMPONENTS``
is not started: its address setting points at an existing service instead.

Every failure is a :class:`StackError` whose message is one line saying what
failed and what to do (with the tail of the component's log where there is one).
"""

from __future__ import annotations

import base64
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from confluent_kafka.admin import AdminClient

from switchboard.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

DEPLOY_DIR = PROJECT_ROOT / "deploy"
KAFKA_LOG_CONFIG = DEPLOY_DIR / "kafka" / "log4j2.properties"
SERVICE_USER = "switchboard"
MQTT_TEST_USERNAME = "switchboard"
MQTT_TEST_PASSWORD = "switchboard-mqtt"
KAFKA_START_TIMEOUT_S = 90.0
POSTGRES_START_TIMEOUT_S = 60.0
MOSQUITTO_START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 20.0
SYSTEM_PACKAGES_HINT = (
    "run `make system-deps` (apt-get install postgresql mosquitto snmptrapd snmp)"
)
_JAVA_MISSING = (
    "kafka: `java` not found; install Java 17+ (apt-get install "
    "openjdk-17-jre-headless)"
)
_MAVEN_MISSING = "kafka: `mvn` not found; install Maven (apt-get install maven)"
_POSTGRES_MISSING = f"postgres: server binaries not found; {SYSTEM_PACKAGES_HINT}"
_MOSQUITTO_MISSING = f"mosquitto: not installed; {SYSTEM_PACKAGES_HINT}"


class StackError(Exception):
    """A stack component failed to start or stop; the message says what to do."""


@dataclass(frozen=True)
class ComponentStatus:
    """What ``stack status`` reports for one component."""

    name: str
    address: str
    managed: bool
    pid: int | None
    answers: bool


def host_port(address: str) -> tuple[str, int]:
    """Split ``host:port`` (the first of a comma-separated list)."""
    first = address.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    return host or "127.0.0.1", int(port)


def port_answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def ports_in_use(host: str, ports: tuple[int, ...]) -> list[int]:
    """Those of ``ports`` on ``host`` that some process accepts connections on."""
    return [port for port in ports if port_answers(host, port)]


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, for error messages."""
    if not path.exists():
        return f"(no log at {path})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text)


def first_error(path: Path, since_bytes: int = 0) -> str:
    """``": <first ERROR or FATAL line>"`` written after ``since_bytes``, or "".

    A broker that fails logs its cause once and then pages of shutdown; the
    tail alone usually hides the line that matters.
    """
    try:
        with path.open("rb") as log:
            log.seek(since_bytes)
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        if " ERROR " in line or " FATAL " in line:
            return f": {line.strip()[:500]}"
    return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An exited child of this process lingers as a zombie until reaped.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _start_time(pid: int) -> str | None:
    """When ``pid`` started, in clock ticks since boot (field 22 of its stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _write_pid(pid_file: Path, pid: int) -> None:
    """Record ``pid`` with its start time, so a reused pid is never taken for it."""
    pid_file.write_text(f"{pid} {_start_time(pid) or ''}".strip())


def _read_pid(pid_file: Path) -> int | None:
    """The recorded pid if that very process still runs, else None.

    A pid file can outlive its process (a crash, a reboot) and the pid can be
    given to an unrelated process; the recorded start time tells them apart, so
    ``down`` never signals a process the stack did not start.
    """
    try:
        recorded = pid_file.read_text().split()
        pid = int(recorded[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    if not _pid_alive(pid):
        return None
    if len(recorded) > 1 and recorded[1] != _start_time(pid):
        return None
    return pid


def _wait_until(
    check: Callable[[], bool], timeout_s: float, interval_s: float = 0.3
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


def _stop_pid(pid_file: Path, name: str) -> bool:
    """Stop the process group recorded in ``pid_file``; True if one was running."""
    pid = _read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not _wait_until(lambda: not _pid_alive(pid), STOP_TIMEOUT_S):
        log.warning(
            "component did not stop in time, killing", extra={"component": name}
        )
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_until(lambda: not _pid_alive(pid), 5.0)
    pid_file.unlink(missing_ok=True)
    return True


def _ensure_service_user() -> pwd.struct_passwd:
    """The unprivileged user that runs PostgreSQL and Mosquitto when we are root."""
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/bin/false",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVICE_USER)


def _as_service_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    _ensure_service_user()
    return ["runuser", "-u", SERVICE_USER, "--", *command]


def _chown_to_service_user(path: Path) -> None:
    if os.geteuid() != 0:
        return
    user = _ensure_service_user()
    for root, dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for entry in dirs + files:
            os.chown(os.path.join(root, entry), user.pw_uid, user.pw_gid)


def _make_traversable(path: Path) -> None:
    """Let the service user reach ``path`` through its parents (o+x on each)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _new_cluster_id() -> str:
    """A random Kafka cluster id, as Kafka's own tools make one.

    An id starting with a dash would be read as an option by the storage tool,
    so such ids are drawn again, the same way Kafka's Uuid.randomUuid does.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaComponent:
    """Apache Kafka in KRaft mode, resolved from Maven Central and run with java."""

    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        """Lay out the broker's folder under the state folder."""
        self.settings = settings
        self.home = settings.state_dir / "kafka"
        self.pid_file = self.home / "kafka.pid"
        self.log_file = self.home / "logs" / "server.log"
        self.console_file = self.home / "logs" / "console.log"
        self.host, self.port = host_port(settings.kafka_bootstrap)
        self.controller_port = self.port + 1

    @property
    def address(self) -> str:
        """The bootstrap address clients use."""
        return f"{self.host}:{self.port}"

    def _port_taken(self, port: int) -> str:
        return (
            f"kafka: port {port} is in use by another process; stop it, or "
            "set SWITCHBOARD_KAFKA_BOOTSTRAP to another port, or leave kafka "
            "out of SWITCHBOARD_STACK_COMPONENTS to use that broker"
        )

    def preflight(self) -> list[str]:
        """Why the broker could not start now (ports taken, java or Maven missing)."""
        if _read_pid(self.pid_file) is not None:
            # Ours runs: answering, it is kept; if not, `up` restarts it, and
            # the ports it holds are its own.
            return []
        problems = [
            self._port_taken(port)
            for port in ports_in_use(self.host, (self.port, self.controller_port))
        ]
        if shutil.which("java") is None:
            problems.append(_JAVA_MISSING)
        if self._cached_classpath() is None and shutil.which("mvn") is None:
            problems.append(_MAVEN_MISSING)
        return problems

    def answers(self, timeout_s: float = 3.0) -> bool:
        """Whether the broker answers a metadata request."""
        if not port_answers(self.host, self.port):
            return False
        admin = AdminClient(
            {
                "bootstrap.servers": self.address,
                "socket.timeout.ms": int(timeout_s * 1000),
            }
        )
        try:
            metadata = admin.list_topics(timeout=timeout_s)
        except Exception:
            return False
        return bool(metadata.brokers)

    def _cached_classpath(self) -> str | None:
        """The classpath Maven resolved before, if still current and complete."""
        pom = DEPLOY_DIR / "kafka" / "pom.xml"
        cached = self.home / "classpath.txt"
        if cached.exists() and cached.stat().st_mtime >= pom.stat().st_mtime:
            entries = cached.read_text().strip().split(os.pathsep)
            if all(Path(entry).exists() for entry in entries):
                return cached.read_text().strip()
        return None

    def classpath(self) -> str:
        """Resolve the broker's jars with Maven, cached until the POM changes."""
        pom = DEPLOY_DIR / "kafka" / "pom.xml"
        cached = self.home / "classpath.txt"
        known = self._cached_classpath()
        if known is not None:
            return known
        if shutil.which("mvn") is None:
            raise StackError(_MAVEN_MISSING)
        result = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={cached}",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not cached.exists():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise StackError(
                "kafka: Maven could not resolve the broker's jars from "
                f"{pom}; check network access to Maven Central.\n{tail}"
            )
        return cached.read_text().strip()

    def _write_config(self) -> Path:
        data_dir = self.home / "data"
        template = (DEPLOY_DIR / "kafka" / "server.properties.template").read_text()
        config = self.home / "server.properties"
        config.write_text(
            template.format(
                broker_port=self.port,
                controller_port=self.controller_port,
                data_dir=data_dir,
            )
        )
        return config

    def _format_storage(self, java: str, classpath: str, config: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = _new_cluster_id()
        result = subprocess.run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "--cluster-id",
                cluster_id,
                "--config",
                str(config),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise StackError(f"kafka: formatting the storage failed.\n{tail}")

    def up(self) -> str:
        """Start the broker unless it already runs; return what was done."""
        if _read_pid(self.pid_file) is not None and self.answers():
            return "already running"
        _stop_pid(self.pid_file, self.name)
        busy = ports_in_use(self.host, (self.port, self.controller_port))
        if busy:
            raise StackError(self._port_taken(busy[0]))
        java = shutil.which("java")
        if java is None:
            raise StackError(_JAVA_MISSING)
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        classpath = self.classpath()
        config = self._write_config()
        self._format_storage(java, classpath, config)
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0

        with self.console_file.open("ab") as console:
            process = subprocess.Popen(
                [
                    java,
                    "-Xms256m",
                    "-Xmx1g",
                    "-XX:+UseG1GC",
                    f"-Dlog4j2.configurationFile={KAFKA_LOG_CONFIG}",
                    f"-Dkafka.logs.dir={self.home / 'logs'}",
                    "-cp",
                    classpath,
                    "kafka.Kafka",
                    str(config),
                ],
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _write_pid(self.pid_file, process.pid)

        def ready() -> bool:
            if process.poll() is not None:
                raise StackError(
                    f"kafka: the broker exited with code {process.returncode}"
                    f"{first_error(self.log_file, log_start)}.\n"
                    f"{log_tail(self.log_file)}\n{log_tail(self.console_file, 5)}"
                )
            return self.answers(timeout_s=2.0)

        if not _wait_until(ready, KAFKA_START_TIMEOUT_S, interval_s=0.5):
            _stop_pid(self.pid_file, self.name)
            raise StackError(
                f"kafka: no answer to metadata requests on {self.address} within "
                f"{KAFKA_START_TIMEOUT_S:.0f}s.\n{log_tail(self.log_file)}"
            )
        return f"started (pid {process.pid})"

    def down(self) -> str:
        """Stop the broker this stack started."""
        return "stopped" if _stop_pid(self.pid_file, self.name) else "not running"

    def status(self) -> ComponentStatus:
        """Whether the broker runs and answers."""
        return ComponentStatus(
            self.name, self.address, True, _read_pid(self.pid_file), self.answers()
        )


def _find_postgres_bin() -> Path | None:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    return candidates[0].parent if candidates else None


class PostgresComponent:
    """An own PostgreSQL cluster in the state folder, run as an unprivileged user."""

    name = "postgres"

    def __init__(self, settings: Settings) -> None:
        """Read the port, user, password and database from the database URL."""
        self.settings = settings
        self.home = settings.state_dir / "postgres"
        self.data_dir = self.home / "data"
        self.log_file = self.home / "postgres.log"
        self.pid_file = self.home / "postgres.pid"
        url = urlsplit(settings.database_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 5432
        self.user = url.username or SERVICE_USER
        self.password = url.password or SERVICE_USER
        self.database = url.path.lstrip("/") or "switchboard"

    @property
    def address(self) -> str:
        """Host and port of the server."""
        return f"{self.host}:{self.port}"

    def _port_taken(self) -> str:
        return (
            f"postgres: port {self.port} is in use by another process; stop it, "
            "or point SWITCHBOARD_DATABASE_URL at another port, or leave postgres "
            "out of SWITCHBOARD_STACK_COMPONENTS to use that server"
        )

    def _own_server_pid(self) -> int | None:
        """The pid in the cluster's postmaster.pid if that process is alive."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid) else None

    def preflight(self) -> list[str]:
        """Why the server could not start now (port taken, binaries missing)."""
        if _read_pid(self.pid_file) is not None or self._own_server_pid():
            # Ours runs: `up` keeps it or restarts it, on the port it holds.
            return []
        problems = []
        if ports_in_use(self.host, (self.port,)):
            problems.append(self._port_taken())
        if _find_postgres_bin() is None:
            problems.append(_POSTGRES_MISSING)
        return problems

    def answers(self) -> bool:
        """Whether the server accepts a connection to the application database."""
        try:
            with psycopg.connect(self.settings.database_url, connect_timeout=3):
                return True
        except psycopg.Error:
            return False

    def _pg(self, binary: str) -> str:
        bin_dir = _find_postgres_bin()
        if bin_dir is None:
            raise StackError(_POSTGRES_MISSING)
        return str(bin_dir / binary)

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        password_file = self.home / "initdb-password"
        password_file.write_text(self.password + "\n")
        _chown_to_service_user(self.home)
        _make_traversable(self.home)
        result = subprocess.run(
            _as_service_user(
                [
                    self._pg("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    f"--pwfile={password_file}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ]
            ),
            capture_output=True,
            text=True,
        )
        password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-10:])
            raise StackError(f"postgres: initdb failed.\n{tail}")

    def _create_database(self) -> None:
        admin_url = self.settings.database_url.rsplit("/", 1)[0] + "/postgres"
        try:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{self.database}"')
        except psycopg.Error as error:
            # The cluster keeps the user and password it was created with, so a
            # changed SWITCHBOARD_DATABASE_URL is refused here.
            reason = str(error).strip().splitlines()[0]
            raise StackError(
                f"postgres: could not create database {self.database} on "
                f"{self.address} as {self.user}: {reason}; the cluster in "
                f"{self.data_dir} accepts only the user and password it was created "
                f"with: use those in SWITCHBOARD_DATABASE_URL, or remove {self.home} "
                "to create it afresh"
            ) from None

    def up(self) -> str:
        """Initialise the cluster if needed and start the server."""
        if _read_pid(self.pid_file) is not None and port_answers(self.host, self.port):
            # Running: a refused login or a missing database is reported or
            # fixed here, never answered by restarting a healthy server.
            self._create_database()
            return "already running"
        self._stop_server()
        if port_answers(self.host, self.port):
            raise StackError(self._port_taken())
        self._initdb()
        pid = self._start_server()
        self._create_database()
        return f"started (pid {pid})"

    def _start_server(self) -> int:
        """Start the server with pg_ctl, waiting until it accepts connections."""
        _chown_to_service_user(self.home)
        socket_dir = self.home / "socket"
        socket_dir.mkdir(exist_ok=True)
        _chown_to_service_user(socket_dir)
        result = subprocess.run(
            _as_service_user(
                [
                    self._pg("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(int(POSTGRES_START_TIMEOUT_S)),
                    "-o",
                    f"-p {self.port} -k {socket_dir} -c listen_addresses={self.host} "
                    "-c max_connections=200 -c fsync=off -c synchronous_commit=off",
                    "start",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise StackError(
                "postgres: the server did not start; the reason is at the end of "
                f"{self.log_file}:\n{log_tail(self.log_file)}"
            )
        pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        _write_pid(self.pid_file, pid)
        return pid

    def _stop_server(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            self.pid_file.unlink(missing_ok=True)
            return False
        result = subprocess.run(
            _as_service_user(
                [
                    self._pg("pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ]
            ),
            capture_output=True,
            text=True,
        )
        self.pid_file.unlink(missing_ok=True)
        return result.returncode == 0

    def down(self) -> str:
        """Stop the server this stack started."""
        return "stopped" if self._stop_server() else "not running"

    def status(self) -> ComponentStatus:
        """Whether the server runs and answers."""
        return ComponentStatus(
            self.name, self.address, True, _read_pid(self.pid_file), self.answers()
        )


def mqtt_auth_port(settings: Settings) -> int:
    """The port of the local Mosquitto's listener that requires a password."""
    return settings.mqtt_port + 1


class MosquittoComponent:
    """Mosquitto with an anonymous listener and one that requires a password."""

    name = "mosquitto"

    def __init__(self, settings: Settings) -> None:
        """Lay out the broker's folder under the state folder."""
        self.settings = settings
        self.home = settings.state_dir / "mosquitto"
        self.pid_file = self.home / "mosquitto.pid"
        self.log_file = self.home / "mosquitto.log"
        self.host = settings.mqtt_host
        self.port = settings.mqtt_port
        self.auth_port = mqtt_auth_port(settings)

    @property
    def address(self) -> str:
        """Anonymous and authenticated listener addresses."""
        return f"{self.host}:{self.port} (auth {self.host}:{self.auth_port})"

    def _port_taken(self, port: int) -> str:
        return (
            f"mosquitto: port {port} is in use by another process; stop it or "
            "set SWITCHBOARD_MQTT_PORT to another port"
        )

    @staticmethod
    def _programs() -> tuple[str | None, str | None]:
        """The broker and its password tool, if installed."""
        binary = shutil.which("mosquitto") or (
            "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
        )
        return binary, shutil.which("mosquitto_passwd")

    def preflight(self) -> list[str]:
        """Why the broker could not start now (ports taken, not installed)."""
        if _read_pid(self.pid_file) is not None:
            return []  # ours runs: `up` keeps it or restarts it
        ports = ports_in_use(self.host, (self.port, self.auth_port))
        problems = [self._port_taken(port) for port in ports]
        if None in self._programs():
            problems.append(_MOSQUITTO_MISSING)
        return problems

    def answers(self) -> bool:
        """Whether both listeners accept TCP connections."""
        return port_answers(self.host, self.port) and port_answers(
            self.host, self.auth_port
        )

    def _write_config(self, passwd_tool: str) -> Path:
        """Write the password file and the configuration; the configuration's path."""
        self.home.mkdir(parents=True, exist_ok=True)
        password_file = self.home / "passwords"
        password_file.unlink(missing_ok=True)
        subprocess.run(
            [
                passwd_tool,
                "-c",
                "-b",
                str(password_file),
                MQTT_TEST_USERNAME,
                MQTT_TEST_PASSWORD,
            ],
            check=True,
            capture_output=True,
        )
        password_file.chmod(0o600)
        user = SERVICE_USER if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        if os.geteuid() == 0:
            _ensure_service_user()
        config = self.home / "mosquitto.conf"
        template = (DEPLOY_DIR / "mosquitto" / "mosquitto.conf.template").read_text()
        config.write_text(
            template.format(
                log_file=self.log_file,
                user=user,
                port=self.port,
                auth_port=self.auth_port,
                password_file=password_file,
            )
        )
        self.log_file.touch()
        _chown_to_service_user(self.home)
        _make_traversable(self.home)
        return config

    def up(self) -> str:
        """Write the configuration and password file, then start the broker."""
        if _read_pid(self.pid_file) is not None and self.answers():
            return "already running"
        _stop_pid(self.pid_file, self.name)
        binary, passwd_tool = self._programs()
        if binary is None or passwd_tool is None:
            raise StackError(_MOSQUITTO_MISSING)
        busy = ports_in_use(self.host, (self.port, self.auth_port))
        if busy:
            raise StackError(self._port_taken(busy[0]))
        config = self._write_config(passwd_tool)
        with self.log_file.open("ab") as log_output:
            process = subprocess.Popen(
                [binary, "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=log_output,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _write_pid(self.pid_file, process.pid)

        def ready() -> bool:
            if process.poll() is not None:
                raise StackError(
                    f"mosquitto: exited with code {process.returncode}.\n"
                    f"{log_tail(self.log_file)}"
                )
            return self.answers()

        if not _wait_until(ready, MOSQUITTO_START_TIMEOUT_S):
            _stop_pid(self.pid_file, self.name)
            raise StackError(
                f"mosquitto: no answer on {self.address}.\n{log_tail(self.log_file)}"
            )
        return f"started (pid {process.pid})"

    def down(self) -> str:
        """Stop the broker this stack started."""
        return "stopped" if _stop_pid(self.pid_file, self.name) else "not running"

    def status(self) -> ComponentStatus:
        """Whether the broker runs and answers."""
        return ComponentStatus(
            self.name, self.address, True, _read_pid(self.pid_file), self.answers()
        )


COMPONENTS = {
    "kafka": KafkaComponent,
    "postgres": PostgresComponent,
    "mosquitto": MosquittoComponent,
}


def components(
    settings: Settings,
) -> list[KafkaComponent | PostgresComponent | MosquittoComponent]:
    """Every component, managed or not, in start order."""
    return [factory(settings) for factory in COMPONENTS.values()]


def up(settings: Settings, report: Callable[[str, str], None] | None = None) -> None:
    """Start every managed component; already running ones are left as they are.

    External components must answer, and every managed one must be able to
    start (ports free, programs installed), before any is started.
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    managed = []
    for component in components(settings):
        if component.name in settings.managed_components:
            managed.append(component)
            continue
        if not component.answers():
            raise StackError(
                f"{component.name}: not managed by the stack and nothing answers "
                f"on {component.address}"
            )
        if report:
            report(component.name, "external, answers")
    problems = [problem for component in managed for problem in component.preflight()]
    if problems:
        raise StackError(preflight_message(problems))
    for component in managed:
        outcome = component.up()
        if report:
            report(component.name, outcome)


def preflight_message(problems: list[str]) -> str:
    """One error line for what keeps the stack from starting, details after it."""
    if len(problems) == 1:
        return f"{problems[0]} (nothing was started)"
    listed = "\n".join(f"  {problem}" for problem in problems)
    return f"{len(problems)} problems, so nothing was started:\n{listed}"


def down(settings: Settings, report: Callable[[str, str], None] | None = None) -> None:
    """Stop every managed component this stack started, in reverse start order."""
    for component in reversed(components(settings)):
        if component.name not in settings.managed_components:
            continue
        outcome = component.down()
        if report:
            report(component.name, outcome)


def status(settings: Settings) -> list[ComponentStatus]:
    """Each component's address, pid and whether it answers."""
    result = []
    for component in components(settings):
        current = component.status()
        if component.name not in settings.managed_components:
            current = ComponentStatus(
                current.name, current.address, False, None, current.answers
            )
        result.append(current)
    return result
