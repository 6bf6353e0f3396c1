"""The committed template and parameter files: what the code builds, and valid by Azure's
own schemas (`../shared/azure-arm-schemas/`), resource by resource."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.azure.params import AT_DEPLOY_TIME
from orchestrator.azure.template import render
from orchestrator.cli.main import main
from tests.azure import schemas
from tests.azure.conftest import INFRA, PARAMETER_FILES, TEMPLATE, load_template

needs_schemas = pytest.mark.skipif(
    not schemas.available(),
    reason=f"Azure's ARM schemas are not at {schemas.SCHEMAS} (CI has ../shared beside the repo)",
)
# Resource types whose schema the shared folder does not hold (asked for); each is still
# checked against the template's common resource envelope.
WITHOUT_SCHEMA = {
    "Microsoft.OperationalInsights/workspaces",
    "Microsoft.Insights/dataCollectionRules",
    "Microsoft.Insights/dataCollectionRuleAssociations",
}
RESOURCES = load_template()["resources"]


def test_the_committed_template_is_what_the_code_builds() -> None:
    assert TEMPLATE.read_text() == render(), "run `poactl azure template --out " + str(TEMPLATE)


def test_the_committed_parameter_files_are_what_params_renders() -> None:
    assert {p.name for p in PARAMETER_FILES} == {
        f"{bank}.{profile}.json"
        for bank in ("bank-a", "bank-b")
        for profile in ("small", "medium", "large")
    }
    for path in PARAMETER_FILES:
        bank, profile, _ = path.name.split(".")
        result = CliRunner().invoke(
            main, ["azure", "params", "--member", bank, "--profile", profile]
        )
        assert result.exit_code == 0, result.output
        assert result.stdout == path.read_text(), f"re-render {path}"


@needs_schemas
def test_the_template_envelope_is_valid() -> None:
    assert schemas.template_errors(load_template()) == []


@needs_schemas
@pytest.mark.parametrize(
    "resource",
    RESOURCES,
    ids=[f"{i}-{r['type'].split('/', 1)[1]}" for i, r in enumerate(RESOURCES)],
)
def test_every_resource_is_valid_by_its_official_schema(resource: dict[str, Any]) -> None:
    if schemas.definition_for(resource["type"], resource["apiVersion"]) is None:
        assert resource["type"] in WITHOUT_SCHEMA, f"no schema for {resource['type']}"
        pytest.skip(f"{resource['type']}@{resource['apiVersion']}: no schema in {schemas.SCHEMAS}")
    assert schemas.resource_errors(resource) == []


@needs_schemas
@pytest.mark.parametrize(
    ("kind", "path", "bad", "expected"),
    [
        ("Microsoft.Storage/storageAccounts", ("properties", "minimumTlsVersion"), "TLS1_9",
         "minimumTlsVersion"),
        ("Microsoft.Compute/virtualMachineScaleSets", ("properties", "orchestrationMode"), "Flex",
         "orchestrationMode"),
        ("Microsoft.KeyVault/vaults", ("properties", "enableRbacAuthorization"), "yes",
         "enableRbacAuthorization"),
        ("Microsoft.Network/loadBalancers", ("sku", "name"), "Premium", "sku"),
        ("Microsoft.Authorization/roleAssignments", ("properties", "principalType"), "Robot",
         "principalType"),
    ],
)  # fmt: skip
def test_the_schema_check_catches_a_broken_resource(
    kind: str, path: tuple[str, ...], bad: object, expected: str
) -> None:
    resource = copy.deepcopy(next(r for r in RESOURCES if r["type"] == kind))
    target = resource
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    errors = schemas.resource_errors(resource)
    assert errors and any(expected in e for e in errors), errors


def _check_values(values: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    """What is wrong with parameter values by the template's own declarations."""
    problems = []
    kinds = {"string": str, "int": int, "bool": bool, "array": list, "object": dict}
    for name, value in values.items():
        spec = parameters.get(name)
        if spec is None:
            problems.append(f"{name}: not a parameter of the template")
            continue
        if not isinstance(value, kinds[spec["type"]]) or (
            spec["type"] == "int" and isinstance(value, bool)
        ):
            problems.append(f"{name}: {value!r} is not {spec['type']}")
        if "allowedValues" in spec and value not in spec["allowedValues"]:
            problems.append(f"{name}: {value!r} not in {spec['allowedValues']}")
        if "minValue" in spec and value < spec["minValue"]:
            problems.append(f"{name}: below {spec['minValue']}")
        if "maxValue" in spec and value > spec["maxValue"]:
            problems.append(f"{name}: above {spec['maxValue']}")
        if "minLength" in spec and len(value) < spec["minLength"]:
            problems.append(f"{name}: shorter than {spec['minLength']}")
        if "maxLength" in spec and len(value) > spec["maxLength"]:
            problems.append(f"{name}: longer than {spec['maxLength']}")
    missing = {n for n, s in parameters.items() if "defaultValue" not in s} - set(values)
    problems += [f"{n}: required, not given" for n in sorted(missing - set(AT_DEPLOY_TIME))]
    return problems


@pytest.mark.parametrize("path", PARAMETER_FILES, ids=[p.name for p in PARAMETER_FILES])
def test_every_parameter_file_fits_the_templates_parameters(path: Path) -> None:
    doc = json.loads(path.read_text())
    values = {k: v["value"] for k, v in doc["parameters"].items()}
    assert _check_values(values, load_template()["parameters"]) == []
    if schemas.available():
        assert schemas.parameter_file_errors(doc) == []


def test_the_parameter_check_catches_a_bad_value() -> None:
    parameters = load_template()["parameters"]
    values = {
        k: v["value"] for k, v in json.loads(PARAMETER_FILES[0].read_text())["parameters"].items()
    }
    assert _check_values({**values, "peering": "carrier-pigeon"}, parameters)
    assert _check_values({**values, "instanceCount": 0}, parameters)
    assert _check_values({**values, "bogus": 1}, parameters)
    assert _check_values({k: v for k, v in values.items() if k != "member"}, parameters)


@needs_schemas
def test_the_portal_form_is_valid_and_feeds_the_template() -> None:
    form = json.loads((INFRA / "createUiDefinition.json").read_text())
    assert schemas.ui_definition_errors(form) == []
    parameters = load_template()["parameters"]
    outputs = form["parameters"]["outputs"]
    assert set(outputs) <= set(parameters), set(outputs) - set(parameters)
    required = {n for n, s in parameters.items() if "defaultValue" not in s}
    assert required <= set(outputs), required - set(outputs)
    elements = [e for step in form["parameters"]["steps"] for e in step["elements"]]
    for element in [*form["parameters"]["basics"], *elements]:
        if element["type"] == "Microsoft.Common.DropDown" and element["name"] in parameters:
            allowed = parameters[element["name"]].get("allowedValues")
            values = [v["value"] for v in element["constraints"]["allowedValues"]]
            assert allowed is None or set(values) <= set(allowed), element["name"]
    broken = copy.deepcopy(form)
    broken["parameters"]["basics"][0]["type"] = "Microsoft.Common.MagicBox"
    assert schemas.ui_definition_errors(broken)
