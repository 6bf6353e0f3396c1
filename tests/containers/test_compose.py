"""compose/docker-compose.yml: valid Compose, and shaped the way the agent needs.

Where `docker compose` exists it judges the file itself (`docker compose config`). This
machine has no Compose CLI, so the file is also interpolated with `compose/.env.example`
the way Compose does and validated against the Compose specification's JSON schema, as
vendored by the `check-jsonschema` package (`vendor.compose-spec`).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose" / "docker-compose.yml"
ENV_EXAMPLE = REPO / "compose" / ".env.example"
_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")
_BRACED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?$", re.S)


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"not KEY=value: {line!r}"
            env[key.strip()] = value.strip()
    return env


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation: $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e},
    ${VAR?e}, ${VAR:+a}, ${VAR+a} and $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group("plain"):
            return env.get(m.group("plain"), "")
        braced = _BRACED.match(m.group("braced"))
        assert braced, f"bad substitution {m.group(0)!r}"
        name, op, arg = braced.group("name"), braced.group("op"), braced.group("arg")
        is_set = name in env
        is_full = is_set and env[name] != ""
        present = is_full if op and op.startswith(":") else is_set
        if op in (":-", "-"):
            return env[name] if present else str(interpolate(arg, env))
        if op in (":?", "?"):
            if not present:
                raise ValueError(f"required variable {name}: {arg}")
            return env[name]
        if op in (":+", "+"):
            return str(interpolate(arg, env)) if present else ""
        return env.get(name, "")

    return _VAR.sub(one, value)


def variables(text: str) -> set[str]:
    names = set()
    for m in _VAR.finditer(text):
        name = m.group("plain") or (m.group("braced") or "").split(":")[0].split("-")[0]
        if name:
            names.add(name)
    return names


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any]) -> dict[str, Any]:
    result = interpolate(raw, read_env_file(ENV_EXAMPLE))
    assert isinstance(result, dict)
    return result


def schema_errors(document: dict[str, Any]) -> list[str]:
    pytest.importorskip(
        "check_jsonschema",
        reason="needs check-jsonschema (the Compose spec schema it vendors) in the dev extras",
    )
    import jsonschema

    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["agent"]["restart_policy"] = "always"  # not a Compose key
    broken["services"]["agent"]["network_mode"] = 42
    errors = schema_errors(broken)
    assert any("restart_policy" in e for e in errors), errors
    assert any(e.startswith("services/agent/network_mode") for e in errors), errors


def test_every_variable_has_a_default_and_is_in_the_env_example(raw: dict[str, Any]) -> None:
    used = variables(COMPOSE.read_text())
    example = read_env_file(ENV_EXAMPLE)
    assert used == set(example), "compose/.env.example and the Compose file disagree"
    # The example lists the defaults: with no .env at all, Compose gives the same file.
    assert interpolate(raw, {}) == interpolate(raw, example)


def test_agent_runs_with_the_docker_socket_its_config_and_same_path_state(
    compose: dict[str, Any],
) -> None:
    agent = compose["services"]["agent"]
    assert agent["network_mode"] == "host"
    assert agent["command"] == ["agent", "--config", "/etc/poactl/agent.yaml"]
    mounts = {m["target"]: m for m in agent["volumes"]}
    config = mounts["/etc/poactl"]  # agent.yaml and the consortium file it names
    assert (config["source"], config["read_only"]) == ("/etc/poactl", True)
    assert mounts["/var/run/docker.sock"]["source"] == "/var/run/docker.sock"
    assert agent["environment"]["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    state = mounts["/var/lib/poactl"]
    assert state["source"] == state["target"]  # the paths the agent hands to Docker
    assert agent["restart"] == "unless-stopped"


def test_geth_is_left_to_the_agent_and_balancer_and_monitor_are_optional(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    always = {name for name, s in services.items() if not s.get("profiles")}
    assert always == {"agent"}  # geth runs only when the agent holds a lease
    for name in ("balancer", "monitor", "index"):
        assert services[name]["profiles"] == [name]
        assert services[name]["network_mode"] == "host"
        assert services[name]["command"][:2] == [name, "--config"]
    tool = services["geth-version"]
    assert tool["profiles"] == ["tools"] and tool["restart"] == "no"
    assert tool["image"] == "ethereum/client-go:v1.13.15"
    assert tool["entrypoint"] == ["/usr/local/bin/geth"]


def _compose_cli() -> list[str] | None:
    for argv in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(argv[0]) and (
            subprocess.run([*argv, "version"], capture_output=True, check=False).returncode == 0
        ):
            return argv
    return None


def test_docker_compose_config_accepts_it() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose CLI on this machine (validated against the schema)")
    result = subprocess.run(
        [*cli, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
