"""Finding processes a test started indirectly (agents, geth) by their command line."""

from __future__ import annotations

import psutil


def processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(text in arg for arg in p.info["cmdline"] or []):
            found.append(p)
    return found
