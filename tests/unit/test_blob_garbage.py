"""A consortium data URL whose server answers garbage: the Blob backend says so with
poactl's error (retried as a service that is not answering properly), never with the
SDK's ValueError (found by the fault suite's impostor scenario)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.errors import ServiceUnavailable
from orchestrator.wiring import open_consortium_data


class Garbage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = os.urandom(300)
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def garbage_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/devstoreaccount1/consortium?sv=x&sig=y"
    server.shutdown()
    server.server_close()


def test_garbage_from_a_consortium_data_url_is_a_clear_error(garbage_url: str) -> None:
    data = open_consortium_data(garbage_url)
    for read in (lambda: data.read("network/networkinfo.json"), lambda: data.list("members/")):
        with pytest.raises(ServiceUnavailable) as e:
            read()
        assert "127.0.0.1" in str(e.value) and e.value.hint
        assert "sig=y" not in str(e.value)  # a SAS signature never reaches a message
