"""Consortium data that is not what it should be: the URL a bank reads another bank's
published data from answers with garbage (an impostor's server on the WAN, or a broken
proxy). Toxiproxy's proxy for bank-b's reads of bank-a's data is pointed at a server in
the router that answers every request with random bytes.

What must hold: bank-b's agents go on (the chain does not stall), nothing of the garbage
gets into bank-b's own store, and a bank that tries to join from that URL gets a clear
error and no state dir.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from orchestrator.errors import PoaError
from orchestrator.lab import netns
from orchestrator.lab.consortium import STORE_PORT, LabConsortium
from orchestrator.lab.wan import Endpoint
from orchestrator.local.join import join
from tests.faults.harness import FaultLab
from tests.faults.verdict import Outcome, Trial, judge


class _Garbage(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = os.urandom(512)
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def garbage_server(ns: str) -> Iterator[str]:
    """An HTTP server inside `ns` answering every request with random bytes; host:port."""
    with netns.inside(ns):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def garbage_data(fl: FaultLab, *, seconds: float = 30) -> tuple[Outcome, dict[str, object]]:
    fl.wait_healthy()
    lab, founders = fl.lab, fl.founders
    source = Endpoint("bank-a", lab.plan.bank("bank-a").store.address, STORE_PORT)
    own_b = founders.on("bank-b", lambda: founders.store("bank-b").own)
    genesis_before = founders.on("bank-b", lambda: own_b.read("network/genesis.json"))
    names_before = set(founders.on("bank-b", lambda: own_b.list("")))
    seen: dict[str, object] = {}
    with garbage_server(lab.plan.router) as impostor:
        lab.wan.upstream("bank-b", source, impostor)
        t = Trial(time.monotonic(), bank="bank-b")
        try:
            t.stall_s = fl.stalled_since(t.t_fault, timeout=seconds)
            newcomer = LabConsortium(lab.dir.root / "bank-x", lab.plan, key_file=lab.dir.key_file)
            with netns.inside(lab.plan.bank("bank-b").app.ns):
                try:
                    join(newcomer, url=founders.data_url("bank-a"), member="bank-x",
                         timeout=30, on_progress=lambda _line: None)  # fmt: skip
                    seen["join"] = "joined (it should not have)"
                except PoaError as e:
                    seen["join"] = str(e)
            seen["state dir left"] = newcomer.layout.root.exists()
        finally:
            lab.wan.upstream("bank-b", source, f"{source.address}:{source.port}")
    t.t_heal = time.monotonic()
    t.resume_s = fl.first_block_after(t.t_heal, timeout=60)
    t.t_end = time.monotonic()
    after = set(founders.on("bank-b", lambda: own_b.list("")))
    seen["new blobs in bank-b's store"] = sorted(
        n for n in after - names_before if not n.startswith(("heartbeats/", "leases/"))
    )
    seen["genesis unchanged"] = founders.on(
        "bank-b", lambda: own_b.read("network/genesis.json")) == genesis_before  # fmt: skip
    return judge(fl, "published data answers garbage", [t], since=t.t_fault), seen
