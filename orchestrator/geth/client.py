"""The one place that builds a `Web3`: Clique's long extraData needs the PoA middleware."""

from __future__ import annotations

from pathlib import Path

from web3 import HTTPProvider, IPCProvider, Web3
from web3.middleware import ExtraDataToPOAMiddleware

from orchestrator.boundaries import Secret


def _with_poa(w3: Web3) -> Web3:
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


def http_web3(url: str, *, timeout: float = 5.0, token: Secret | None = None) -> Web3:
    """No retries inside web3 (it would resend `eth_sendRawTransaction`): callers decide.
    `token` is an application's token for its bank's balancer (`Authorization: Bearer`)."""
    kwargs: dict[str, object] = {"timeout": timeout}
    if token is not None:  # headers given replace web3's own: keep its content type
        kwargs["headers"] = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token.value}",
        }
    provider = HTTPProvider(url, request_kwargs=kwargs, exception_retry_configuration=None)
    return _with_poa(Web3(provider))


def ipc_web3(path: Path, *, timeout: float = 5.0) -> Web3:
    return _with_poa(Web3(IPCProvider(str(path), timeout=max(1, round(timeout)))))
