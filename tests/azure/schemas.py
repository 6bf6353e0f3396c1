"""Azure's official ARM JSON schemas (`<repo>/../shared/azure-arm-schemas/`), offline.

The schemas name each other by their upstream URLs
(`https://schema.management.azure.com/schemas/<path>`); `registry()` resolves those to
the local copy, so `jsonschema` (Draft 4, as the files declare) follows every `$ref`
without a network. `definition_for(type, apiVersion)` finds the provider file's
`resourceDefinitions` entry for a resource, and `resource_errors` validates one
resource against it (and against the template's common resource envelope).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO.parent / "shared" / "azure-arm-schemas"
BASE = "https://schema.management.azure.com/schemas/"
TEMPLATE_SCHEMA = "2019-04-01/deploymentTemplate.json"
PARAMETERS_SCHEMA = "2019-04-01/deploymentParameters.json"


def available() -> bool:
    return (SCHEMAS / TEMPLATE_SCHEMA).is_file()


@functools.cache
def _load(path: str) -> Any:
    return json.loads((SCHEMAS / path).read_text())


def _retrieve(uri: str) -> Resource[Any]:
    if not uri.startswith(BASE):
        raise NoSuchResource(uri)
    path = uri[len(BASE) :].split("#", 1)[0]
    if not (SCHEMAS / path).is_file():
        raise NoSuchResource(uri)
    contents = _load(path)
    if contents.get("$schema") == "http://json-schema.org/schema#":  # the portal's files
        return DRAFT4.create_resource(contents)
    return Resource.from_contents(contents, default_specification=DRAFT4)


@functools.cache
def registry() -> Registry[Any]:
    return Registry(retrieve=_retrieve)  # type: ignore[call-arg]


def _validator(schema: Any) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(schema, registry=registry())


def definition_for(resource_type: str, api_version: str) -> str | None:
    """`<file>#/resourceDefinitions/<name>` for a type and API version, if shipped."""
    folder = SCHEMAS / api_version
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.json")):
        doc = _load(f"{api_version}/{path.name}")
        for name, definition in doc.get("resourceDefinitions", {}).items():
            props = definition.get("properties", {})
            if resource_type in props.get("type", {}).get("enum", []) and api_version in props.get(
                "apiVersion", {}
            ).get("enum", []):
                return f"{BASE}{api_version}/{path.name}#/resourceDefinitions/{name}"
    return None


def _deepest(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """A oneOf/anyOf error hides the real one (the value against the typed branch, not
    the expression branch): the error furthest into the document."""
    found = [error]
    for child in error.context or ():
        found.append(_deepest(child))
    return max(found, key=lambda e: len(e.absolute_path))


def _messages(errors: Iterator[jsonschema.ValidationError]) -> list[str]:
    out = []
    for error in sorted(errors, key=lambda e: list(e.absolute_path)):
        best = _deepest(error)
        where = "/".join(str(p) for p in best.absolute_path) or "(top)"
        out.append(f"{where}: {best.message[:300]}")
    return out


def resource_errors(resource: dict[str, Any]) -> list[str]:
    """What is wrong with one template resource, by its provider's official schema."""
    ref = definition_for(resource["type"], resource["apiVersion"])
    if ref is None:
        return [f"no schema for {resource['type']}@{resource['apiVersion']} in {SCHEMAS}"]
    schema = {
        "allOf": [
            {"$ref": f"{BASE}{TEMPLATE_SCHEMA}#/definitions/resourceBase"},
            {"$ref": ref},
        ]
    }
    return _messages(_validator(schema).iter_errors(resource))


def template_errors(template: dict[str, Any]) -> list[str]:
    """The template's envelope (parameters, variables, outputs, the resources' common
    keys) by deploymentTemplate.json; each resource's body is `resource_errors`'."""
    schema = copy.deepcopy(_load(TEMPLATE_SCHEMA))
    schema["definitions"]["resource"] = {"$ref": "#/definitions/resourceBase"}
    return _messages(_validator(schema).iter_errors(template))


def parameter_file_errors(parameters: dict[str, Any]) -> list[str]:
    return _messages(_validator({"$ref": f"{BASE}{PARAMETERS_SCHEMA}#"}).iter_errors(parameters))


def ui_definition_errors(form: dict[str, Any]) -> list[str]:
    """The portal form (createUiDefinition.json) by its 0.1.2-preview schema."""
    ref = f"{BASE}0.1.2-preview/CreateUIDefinition.MultiVm.json#"
    return _messages(_validator({"$ref": ref}).iter_errors(form))
