"""Shared fixtures: the seeds, the shared data folder, and a real Kafka-protocol broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from marsad.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def seeds() -> list[Path]:
    return sorted(SEEDS.glob("*.txt"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder at {SHARED_DATA}, which is absent")
    return SHARED_DATA


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A real Tansu broker on a free loopback port, stopped after the test."""
    with EmbeddedBroker() as running:
        yield running


def marsad(*args: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "marsad.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


class Service:
    """`marsad run` as a child process, like a user starts it."""

    def __init__(self, config: Path, cwd: Path, role: str = "all"):
        self.config, self.cwd, self.role = config, cwd, role
        self.proc: subprocess.Popen[str] | None = None
        self.stdout = self.stderr = ""

    def start(self) -> Service:
        self.proc = subprocess.Popen([sys.executable, "-m", "marsad.cli", "run", "--config",
                                      str(self.config), "--role", self.role], cwd=self.cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=60)
        self.stdout += out
        self.stderr += err
        # Into the test's captured output, which pytest shows when the test fails: the service's
        # own log is what explains a timeout.
        sys.stderr.write(f"--- service stderr ---\n{err}")
        return self.proc.returncode


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARSAD_")}
    env.update(extra)
    return env
