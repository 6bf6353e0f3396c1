"""The follower's line to the bank's own nodes: plain JSON-RPC batches over HTTP (what a
balancer passes), the first node that answers, the next one when it stops answering."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import requests

from orchestrator.errors import NodeUnreachable, RpcRefused

log = logging.getLogger(__name__)


class NodeClient:
    """JSON-RPC to the first of `urls` that answers; `token` for a balancer."""

    def __init__(self, urls: Sequence[str], *, timeout: float = 10.0, token: str | None = None):
        if not urls:
            raise ValueError("a node client needs at least one URL")
        self.urls = list(urls)
        self.timeout = timeout
        self._at = 0
        self._session = requests.Session()
        if token is not None:
            self._session.headers["Authorization"] = f"Bearer {token}"

    @property
    def url(self) -> str:
        return self.urls[self._at]

    def close(self) -> None:
        self._session.close()

    def call(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """The results of `calls`, in order, from one node in one HTTP request.

        NodeUnreachable when no node answers (the next call starts with the next node);
        RpcRefused when the node answered one of them with an error.
        """
        if not calls:
            return []
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        url = self.url
        try:
            response = self._session.post(url, json=body, timeout=self.timeout)
            answers = response.json()
        except (requests.RequestException, ValueError) as e:
            self._at = (self._at + 1) % len(self.urls)
            if len(self.urls) > 1:
                log.info("node %s did not answer; next: %s", url, self.url)
            raise NodeUnreachable(
                f"the bank's node did not answer: {type(e).__name__}",
                obj=url,
                hint="check that the node (or its balancer) runs; the index keeps trying",
            ) from e
        if not isinstance(answers, list):
            raise NodeUnreachable(f"not a JSON-RPC batch answer: {answers!r:.200}", obj=url)
        by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
        results = []
        for i, (method, _params) in enumerate(calls):
            answer = by_id.get(i)
            if answer is None or "error" in answer:
                error = (answer or {}).get("error", "no answer in the batch")
                message = error.get("message", error) if isinstance(error, dict) else error
                raise RpcRefused(f"{method} failed: {message}", obj=url)
            results.append(answer.get("result"))
        return results
