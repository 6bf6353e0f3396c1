"""Evaluate ARM template expressions the way Azure's deployment engine would, for the
functions the template uses, so tests (and the boot rehearsal) see the values a real
deployment would give: the VMs' custom data, the outputs, resource names.

`Deployment(template, parameters, references)` evaluates `[...]` strings; `references`
stands for what Azure knows only once resources exist (`reference(id).property`): the
vault's URI, the storage account's endpoints, the identity's client id, public IPs.
An unknown function is an error, never a guess.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<punct>[().,\[\]]))"
)


class ArmError(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if not m:
            raise ArmError(f"cannot parse at {text[pos : pos + 30]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class Deployment:
    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, Any],
        references: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        resource_group: str = "rg-poactl",
        subscription: str = "00000000-0000-0000-0000-000000000001",
        tenant: str = "00000000-0000-0000-0000-000000000002",
        location: str = "westeurope",
    ) -> None:
        self.template = template
        self.references = dict(references or {})
        self.resource_group, self.subscription, self.tenant = resource_group, subscription, tenant
        self.location = location
        self.copy_index = 0
        self.params: dict[str, Any] = {}
        for name, spec in template["parameters"].items():
            if name in parameters:
                self.params[name] = parameters[name]
            elif "defaultValue" in spec:
                self.params[name] = self.value(spec["defaultValue"])
            else:
                raise ArmError(f"parameter {name} has no value")
        self._variables: dict[str, Any] = {}
        self._lambda_vars: list[dict[str, Any]] = []

    # -- values --------------------------------------------------------------------------

    def value(self, node: Any) -> Any:
        """Evaluate every expression in `node` (a string, list or object)."""
        if isinstance(node, str):
            if node.startswith("[[") or not (node.startswith("[") and node.endswith("]")):
                return node[1:] if node.startswith("[[") else node
            return self.expression(node[1:-1])
        if isinstance(node, list):
            return [self.value(n) for n in node]
        if isinstance(node, dict):
            return {self.value(k): self.value(v) for k, v in node.items()}
        return node

    def variable(self, name: str) -> Any:
        if name not in self._variables:
            self._variables[name] = self.value(self.template["variables"][name])
        return self._variables[name]

    def output(self, name: str) -> Any:
        return self.value(self.template["outputs"][name]["value"])

    def resources(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.template["resources"] if r["type"] == resource_type]

    # -- expressions ---------------------------------------------------------------------

    def expression(self, text: str) -> Any:
        tokens = _tokens(text)
        value, pos = self._expr(tokens, 0)
        if pos != len(tokens):
            raise ArmError(f"trailing input in {text!r}")
        return value

    def _expr(self, tokens: list[tuple[str, str]], pos: int) -> tuple[Any, int]:
        kind, text = tokens[pos]
        if kind == "string":
            value: Any = text[1:-1].replace("''", "'")
            pos += 1
        elif kind == "number":
            value, pos = int(text), pos + 1
        elif kind == "name":
            if tokens[pos + 1] != ("punct", "("):
                raise ArmError(f"{text} is not a call")
            pos += 2
            if text == "lambda":  # lambda('x', body): body evaluated per call
                name, pos = self._expr(tokens, pos)
                pos = self._expect(tokens, pos, ",")
                start, pos = pos, self._skip(tokens, pos)
                body = tokens[start:pos]
                pos = self._expect(tokens, pos, ")")

                def call(item: Any, name: str = name, body: list[tuple[str, str]] = body) -> Any:
                    self._lambda_vars.append({name: item})
                    try:
                        return self._expr(body, 0)[0]
                    finally:
                        self._lambda_vars.pop()

                value = call
            elif text == "if":  # only the branch taken is evaluated, as in ARM
                condition, pos = self._expr(tokens, pos)
                pos = self._expect(tokens, pos, ",")
                chosen = []
                for taken in (bool(condition), not condition):
                    start = pos
                    pos = self._skip(tokens, pos)
                    if taken:
                        chosen.append(self._expr(tokens, start)[0])
                    if tokens[pos] == ("punct", ","):
                        pos += 1
                value = chosen[0]
                pos = self._expect(tokens, pos, ")")
            else:
                args = []
                while tokens[pos] != ("punct", ")"):
                    arg, pos = self._expr(tokens, pos)
                    args.append(arg)
                    if tokens[pos] == ("punct", ","):
                        pos += 1
                pos += 1
                value = self._call(text, args)
        else:
            raise ArmError(f"unexpected {text!r}")
        while pos < len(tokens) and tokens[pos] in (("punct", "."), ("punct", "[")):
            if tokens[pos] == ("punct", "."):
                value, pos = value[tokens[pos + 1][1]], pos + 2
            else:
                index, pos = self._expr(tokens, pos + 1)
                value = value[index]
                pos = self._expect(tokens, pos, "]")
        return value, pos

    def _skip(self, tokens: list[tuple[str, str]], pos: int) -> int:
        """Past one argument without evaluating it."""
        depth = 0
        while True:
            token = tokens[pos]
            if token in (("punct", "("), ("punct", "[")):
                depth += 1
            elif token in (("punct", ")"), ("punct", "]")):
                if depth == 0:
                    return pos
                depth -= 1
            elif token == ("punct", ",") and depth == 0:
                return pos
            pos += 1

    @staticmethod
    def _expect(tokens: list[tuple[str, str]], pos: int, punct: str) -> int:
        if tokens[pos] != ("punct", punct):
            raise ArmError(f"expected {punct!r}, got {tokens[pos][1]!r}")
        return pos + 1

    def _call(self, name: str, args: list[Any]) -> Any:
        functions: dict[str, Callable[..., Any]] = {
            "parameters": lambda n: self.params[n],
            "variables": self.variable,
            "format": _format,
            "base64": lambda s: base64.b64encode(s.encode()).decode(),
            "string": lambda v: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")),
            "concat": lambda *a: (
                list(itertools.chain(*a)) if isinstance(a[0], list) else "".join(map(str, a))
            ),
            "createObject": lambda *a: dict(zip(a[::2], a[1::2], strict=True)),
            "createArray": lambda *a: list(a),
            "equals": lambda a, b: a == b,
            "empty": lambda v: len(v) == 0,
            "add": lambda a, b: a + b,
            "resourceId": lambda t, *n: f"{t}/{'/'.join(n)}",
            "subscriptionResourceId": lambda t, *n: (
                f"/subscriptions/{self.subscription}/{t}/" + "/".join(n)
            ),
            "reference": self._reference,
            "guid": lambda *a: str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(a))),
            "copyIndex": lambda *a: self.copy_index,
            "map": lambda items, fn: [fn(item) for item in items],
            "lambdaVariables": lambda n: next(v[n] for v in reversed(self._lambda_vars) if n in v),
            "subscription": lambda: {"subscriptionId": self.subscription, "tenantId": self.tenant},
            "resourceGroup": lambda: {"name": self.resource_group, "location": self.location},
        }
        if name not in functions:
            raise ArmError(f"function {name}() is not evaluated here")
        return functions[name](*args)

    def _reference(self, resource_id: str, *_: Any) -> Mapping[str, Any]:
        if resource_id not in self.references:
            raise ArmError(f"no reference() value for {resource_id}")
        return self.references[resource_id]


def _format(pattern: str, *args: Any) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(0) == "{{":
            return "{"
        if m.group(0) == "}}":
            return "}"
        value = args[int(m.group(1))]
        return json.dumps(value) if isinstance(value, bool) else str(value)

    return re.sub(r"\{\{|\}\}|\{(\d+)\}", one, pattern)
