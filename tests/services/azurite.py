"""Pytest fixtures for Azurite, the Azure Blob Storage emulator (`scripts/setup.sh` installs
it into `.tools/node`).

`azurite` is one instance for the whole session; `azurite_factory` starts private
instances for tests that pause or stop storage. `unique_container()` names a fresh
container so tests sharing an instance never see each other's blobs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

AZURITE = Path(__file__).resolve().parents[2] / ".tools/node/node_modules/.bin/azurite-blob"
ACCOUNT = "devstoreaccount1"  # Azurite's well-known development account and key
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
START_TIMEOUT = 30.0
CLOSED = "Azurite Blob service successfully closed"  # it prints this once its data is saved


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def unique_container(prefix: str = "t") -> str:
    """A container name nobody has used (3-63 lowercase letters, digits, dashes)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class Azurite:
    """One azurite-blob process on 127.0.0.1:`port`, its data in `location`."""

    def __init__(self, location: Path, port: int | None = None) -> None:
        self.location = location
        self.port = port or free_port()
        self.log_file = location / "azurite.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def account_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def credential(self) -> dict[str, str]:
        return {"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}

    @property
    def pid(self) -> int:
        assert self._proc is not None, "azurite is not running"
        return self._proc.pid

    def start(self) -> None:
        """Start on this port and location (data from earlier runs is kept)."""
        if not AZURITE.exists():
            pytest.fail(f"Azurite is not installed at {AZURITE}: run scripts/setup.sh")
        self.location.mkdir(parents=True, exist_ok=True)
        argv = [
            str(AZURITE),
            *("--blobHost", "127.0.0.1", "--blobPort", str(self.port)),
            *("--location", str(self.location), "--skipApiVersionCheck", "--loose", "--silent"),
        ]
        with self.log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_file.read_text(errors="replace").splitlines()[-20:]
                pytest.fail(f"azurite on port {self.port} did not start:\n" + "\n".join(tail))
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop it: TERM, so it saves its data, then KILL once it says it has closed
        (its event loop lingers for seconds after that) or after 10 s."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        closed = self._closed_count()
        proc.send_signal(signal.SIGCONT)  # a paused process cannot act on TERM
        proc.terminate()
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            if self._closed_count() > closed:
                break
            time.sleep(0.05)
        proc.kill()
        proc.wait()

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but requests hang, like a storage
        account that stopped answering."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def _closed_count(self) -> int:
        return self.log_file.read_text(errors="replace").count(CLOSED)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"GET /devstoreaccount1?comp=list HTTP/1.0\r\n\r\n")
                return s.recv(12).startswith(b"HTTP/1.")
        except OSError:
            return False


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session; give each test its own container (`unique_container`)."""
    instance = Azurite(tmp_path_factory.mktemp("azurite"))
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def azurite_factory(tmp_path: Path) -> Iterator[Callable[[], Azurite]]:
    """Start private Azurites (to pause or stop without disturbing other tests); all are
    stopped at teardown."""
    started: list[Azurite] = []

    def start() -> Azurite:
        instance = Azurite(tmp_path / f"azurite-{len(started)}")
        started.append(instance)
        instance.start()
        return instance

    yield start
    for instance in started:
        instance.stop()
        shutil.rmtree(instance.location, ignore_errors=True)
