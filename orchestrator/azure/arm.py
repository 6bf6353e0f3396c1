"""Small helpers to write ARM template expressions, and the API versions used.

One API version per resource provider, bumped together; each matches a schema file in
Azure's ARM schemas (`tests/azure` validates every resource against it).
"""

from __future__ import annotations

from typing import Any

COMPUTE = "2024-11-01"
NETWORK = "2025-05-01"
STORAGE = "2025-06-01"
KEYVAULT = "2025-05-01"
IDENTITY = "2024-11-30"
AUTHORIZATION = "2022-04-01"
OPERATIONAL_INSIGHTS = "2023-09-01"
INSIGHTS = "2023-03-11"

Json = dict[str, Any]


def x(expression: str) -> str:
    """An ARM expression: `[...]`."""
    return f"[{expression}]"


def p(name: str) -> str:
    return f"parameters('{name}')"


def v(name: str) -> str:
    return f"variables('{name}')"


def rid(resource_type: str, *names: str) -> str:
    """`resourceId(...)` of a resource in this resource group; names are expressions."""
    return f"resourceId('{resource_type}', {', '.join(names)})"


def ref(resource_type: str, name: str, api_version: str) -> str:
    """`reference(...)` of a resource this template deploys (its runtime properties)."""
    return f"reference({rid(resource_type, name)}, '{api_version}')"


def sub_id(resource_type: str, *names: str) -> Json:
    """A reference to a resource (or a child) by id: `{"id": "[resourceId(...)]"}`."""
    return {"id": x(rid(resource_type, *names))}


def resource(
    resource_type: str,
    api_version: str,
    name: str,
    properties: Json | None = None,
    *,
    depends_on: list[str] | None = None,
    condition: str | None = None,
    located: bool = True,
    skips: dict[str, str] | None = None,
    **extra: Any,
) -> Json:
    """One resource in the order ARM's documentation shows its keys. `skips` (check id ->
    why it does not apply) become checkov's inline suppressions, in the resource's
    metadata, where a reader of the template sees them too."""
    out: Json = {}
    if condition is not None:
        out["condition"] = x(condition)
    out.update(type=resource_type, apiVersion=api_version, name=name)
    if skips:
        out["metadata"] = {"checkov": [f"{check}: {why}" for check, why in sorted(skips.items())]}
    if located:
        out["location"] = x(p("location"))
    out.update(extra)
    if properties is not None:
        out["properties"] = properties
    if depends_on:
        out["dependsOn"] = depends_on
    return out
