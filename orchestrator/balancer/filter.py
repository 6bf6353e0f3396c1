"""The JSON-RPC filter HAProxy routes a bank's applications through (`balancer.jsonrpc`
decides; this serves it), over HTTP and WebSocket, in front of the bank's node pool.

Why a filter of its own and not HAProxy alone: HAProxy's `json_query` reads the first
of duplicate keys, case-sensitively, without decoding escapes, cannot address every
element of a batch, and sees nothing of WebSocket frames once the connection is
upgraded (it tunnels them); geth reads the last duplicate, case-insensitively, decodes
escapes, accepts batches and reads every frame. Lua in HAProxy would need a JSON library
with geth's semantics and still could not see WebSocket frames. This filter parses
each HTTP body and each WebSocket message, decides every request the way geth reads it,
answers refusals itself, and forwards only canonical re-written requests, so what geth
runs is what was checked.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from aiohttp import web
from tenacity import retry, retry_if_exception_type, stop_after_attempt

from orchestrator.balancer.jsonrpc import (
    MAX_BODY_BYTES,
    Refusal,
    canonical_json,
    decide,
    parse_body,
)
from orchestrator.geth.tx import NO_NODE_ANSWERED

log = logging.getLogger(__name__)

UPSTREAM_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=3)
DROPPED_ATTEMPTS = 3
POOL_KEEPALIVE = 5.0  # seconds; under HAProxy's `timeout http-keep-alive` (10 s)


class Filter:
    """Serve the filter on `host:port`, forwarding to the node pool at `upstream`."""

    def __init__(self, host: str, port: int, upstream: str) -> None:
        self.host, self.port, self.upstream = host, port, upstream.rstrip("/")
        self.refused = 0
        self.forwarded = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/", self._handle)
        self._session = aiohttp.ClientSession(
            timeout=UPSTREAM_TIMEOUT,
            connector=aiohttp.TCPConnector(keepalive_timeout=POOL_KEEPALIVE),
        )
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        if request.method != "POST":
            return web.json_response(
                Refusal(None, -32600, "POST a JSON-RPC request").reply(), status=405
            )
        body = await request.read()
        answer = await self.answer(body)
        return web.Response(body=canonical_json(answer), content_type="application/json")

    async def answer(self, body: bytes) -> Any:
        """The reply to one HTTP body: refusals answered here, the rest by a node."""
        parsed = parse_body(body)
        if isinstance(parsed, Refusal):
            self.refused += 1
            return parsed.reply()
        requests, batch = parsed
        replies: list[Any] = [None] * len(requests)
        i: Any
        forward: list[dict[str, Any]] = []
        for i, item in enumerate(requests):
            decision = decide(item, websocket=False)
            if decision.refusal is not None:
                self.refused += 1
                replies[i] = decision.refusal.reply()
            elif decision.forward is not None:
                forward.append({**decision.forward, "id": i})  # our ids; theirs restored below
        if forward:
            self.forwarded += len(forward)
            answers = await self._post(forward)
            for a in answers:
                i = a.get("id") if isinstance(a, dict) else None
                if isinstance(i, int) and 0 <= i < len(requests):  # one of our ids
                    original = requests[i].get("id") if isinstance(requests[i], dict) else None
                    replies[i] = {**a, "id": original}
        if not batch:
            return replies[0]
        return [r for r, item in zip(replies, requests, strict=True)
                if r is not None and not (isinstance(item, dict) and "id" not in item)]  # fmt: skip

    async def _post(self, forward: list[dict[str, Any]]) -> list[Any]:
        try:
            answer = await self._post_once_more_if_dropped(canonical_json(forward))
        except (TimeoutError, aiohttp.ClientError, ValueError) as e:
            log.warning("the node pool did not answer: %s", e)
            return [
                Refusal(f["id"], -32603, f"{NO_NODE_ANSWERED}; try again").reply() for f in forward
            ]
        return answer if isinstance(answer, list) else [answer]

    @retry(
        retry=retry_if_exception_type((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)),
        stop=stop_after_attempt(DROPPED_ATTEMPTS),
        reraise=True,
    )
    async def _post_once_more_if_dropped(self, body: bytes) -> Any:
        """POST to the pool, and again when the connection drops without an answer.

        HAProxy closes an idle keep-alive connection after its keep-alive timeout, on a
        reload or when stopped; a request written onto one as it closes gets no answer.
        Sending it again is safe because everything the filter forwards is idempotent:
        reads, and `eth_sendRawTransaction`, whose transaction geth knows by its hash.
        """
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        async with self._session.post(self.upstream, data=body, headers=headers) as r:
            return await r.json(content_type=None)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse(max_msg_size=MAX_BODY_BYTES)
        await client.prepare(request)
        assert self._session is not None
        ws_url = "ws" + self.upstream.removeprefix("http")
        try:
            upstream = await self._session.ws_connect(ws_url, max_msg_size=16 * MAX_BODY_BYTES)
        except (TimeoutError, aiohttp.ClientError) as e:
            log.warning("no node for a WebSocket: %s", e)
            await client.close(code=1011, message=NO_NODE_ANSWERED.encode())
            return client

        async def down() -> None:  # the node's answers and notifications, as they are
            async for message in upstream:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await client.send_str(message.data)
            await client.close()

        relay = asyncio.create_task(down())
        try:
            async for message in client:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                for out, to_client in self._frame(message.data.encode()):
                    if to_client:
                        await client.send_str(out)
                    else:
                        await upstream.send_str(out)
        finally:
            relay.cancel()
            await upstream.close()
        return client

    def _frame(self, data: bytes) -> list[tuple[str, bool]]:
        """(text, to the client?) for one WebSocket message. A batch goes on whole, as a
        canonical batch, when every request in it is allowed; otherwise the filter answers
        all of it (the refused ones with their reason, the others as not sent)."""
        parsed = parse_body(data)
        if isinstance(parsed, Refusal):
            self.refused += 1
            return [(json.dumps(parsed.reply()), True)]
        requests, batch = parsed
        decisions = [decide(item, websocket=True) for item in requests]
        refused = [d for d in decisions if d.refusal is not None]
        self.refused += len(refused)
        if not batch:
            (d,) = decisions
            if d.refusal is not None:
                return [(json.dumps(d.refusal.reply()), True)]
            self.forwarded += 1
            return [(canonical_json(d.forward).decode(), False)]
        if refused:
            replies = [
                d.refusal.reply() if d.refusal is not None
                else Refusal(d.forward["id"] if d.forward else None, -32600,
                             "not sent: the batch holds a refused request").reply()
                for d in decisions
            ]  # fmt: skip
            return [(json.dumps(replies), True)]
        self.forwarded += len(decisions)
        return [(canonical_json([d.forward for d in decisions]).decode(), False)]
