"""Which Docker API errors mean "that container no longer exists": Docker's 404, and
Podman's 500 for a container removed while the request was under way (seen in CI when an
agent removed a stopped container during a test's inspect)."""

from __future__ import annotations

import requests
from docker.errors import APIError, NotFound

from orchestrator.runtime.docker import is_gone


def error(status: int, explanation: str) -> APIError:
    response = requests.Response()
    response.status_code = status
    cls = NotFound if status == 404 else APIError
    return cls("inspect", response=response, explanation=explanation)


def test_a_404_is_gone() -> None:
    assert is_gone(error(404, "No such container: poactl-bank-b-2"))


def test_podmans_500_for_a_container_removed_meanwhile_is_gone() -> None:
    assert is_gone(
        error(
            500,
            "container 520f6ff3e888 does not exist in database: no such container",
        )
    )


def test_other_server_errors_are_not_gone() -> None:
    assert not is_gone(error(500, "cannot connect to the runtime"))
    assert not is_gone(error(409, "container is not running"))
