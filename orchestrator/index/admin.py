"""An operator's hand on a running read index: rebuild it from the chain and wait.

`rebuild` asks the index (`POST /v1/rebuild`, from its own machine) to forget what it
holds and fill again from the registry's first block, and follows its `/v1/status` until
it has caught up with its node; meanwhile readers read from the node (the index reports
itself far behind). A new index needs none of this: it fills itself when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from orchestrator.credit.indexed import REBUILD_PATH, STATUS_PATH
from orchestrator.errors import ServiceUnavailable, WaitTimeout

CAUGHT_UP_BLOCKS = 1


@dataclass(frozen=True)
class Rebuilt:
    block: int
    logs: int
    seconds: float


def _status(url: str) -> dict[str, Any]:
    try:
        doc = requests.get(url + STATUS_PATH, timeout=5).json()
    except (requests.RequestException, ValueError) as e:
        raise ServiceUnavailable(
            f"the read index does not answer ({type(e).__name__})",
            obj=url,
            hint="is it running? `poactl status` shows each bank's index (`poactl up` "
            "starts them; on a VM, `systemctl status poactl-index`)",
        ) from e
    if not isinstance(doc, dict):
        raise ServiceUnavailable("the read index's status is not a JSON object", obj=url)
    return doc


def rebuild(
    url: str,
    *,
    timeout: float = 3600.0,
    on_progress: Callable[[dict[str, Any]], None] = lambda _status: None,
) -> Rebuilt:
    """Rebuild the index at `url` from the chain; returns once it is within a block of
    its node's head. `on_progress` hears each status read meanwhile (every second)."""
    url = url.rstrip("/")
    t0 = time.monotonic()
    before = int(_status(url).get("rebuilds") or 0)
    try:
        answer = requests.post(url + REBUILD_PATH, timeout=5)
    except requests.RequestException as e:
        raise ServiceUnavailable(f"the read index does not answer ({type(e).__name__})",
                                 obj=url) from e  # fmt: skip
    if answer.status_code != 202:
        raise ServiceUnavailable(
            f"the read index refused the rebuild: HTTP {answer.status_code} {answer.text[:200]}",
            obj=url,
            hint="ask from the index's own machine (it takes a rebuild from loopback only)",
        )
    status: dict[str, Any] = {}
    while time.monotonic() - t0 < timeout:
        status = _status(url)
        on_progress(status)
        started = int(status.get("rebuilds") or 0) > before
        behind = status.get("behind")
        if (
            started
            and not status.get("rebuilding")
            and behind is not None
            and behind <= CAUGHT_UP_BLOCKS
        ):
            block = (status.get("block") or {}).get("number") or 0
            return Rebuilt(int(block), int(status.get("logs") or 0), time.monotonic() - t0)
        time.sleep(1.0)
    raise WaitTimeout(
        "the read index did not finish rebuilding",
        elapsed=time.monotonic() - t0,
        last_state=f"block {(status.get('block') or {}).get('number')}, "
        f"{status.get('behind')} behind, problem: {status.get('problem')}",
        obj=url,
        hint="it goes on filling; follow it with `poactl status`",
    )
