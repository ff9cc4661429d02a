"""Reading template.yaml: YAML with CloudFormation's short-form tags, SAM's Globals merged for reading.

Nothing here creates or resolves a stack (moto's CloudFormation does, from aws-sam-translator's
expansion: tools.local_aws.stack). ``TemplateDefaults`` fills parameter references with their values
for readers that need no stack (the routes of ``python -m tools.local_aws.apigw_events``, unit tests).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# SAM Globals section -> the resource type it applies to.
GLOBALS_SECTIONS = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
    "SimpleTable": "AWS::Serverless::SimpleTable",
    "StateMachine": "AWS::Serverless::StateMachine",
    "LayerVersion": "AWS::Serverless::LayerVersion",
}


class TemplateError(ValueError):
    """The template cannot be read or run locally as written."""


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...) as their long form."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{tag_suffix}": value}


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    # CloudFormation keeps unquoted dates (e.g. a policy Version 2012-10-17) as strings.
    return loader.construct_scalar(node)  # type: ignore[arg-type]


CfnLoader.add_multi_constructor("!", _construct_tag)
CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def loads_template(text: str) -> dict[str, Any]:
    """Parse a template given as text (YAML, or JSON which is YAML too)."""
    data = yaml.load(text, Loader=CfnLoader)  # CfnLoader is a SafeLoader
    if not isinstance(data, dict):
        raise TemplateError("a template must be a mapping")
    return data


def load_template(path: str | Path) -> dict[str, Any]:
    return loads_template(Path(path).read_text(encoding="utf-8"))


def resources_of_type(template: Mapping[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") in types
    }


def _intrinsic(value: Mapping[str, Any]) -> bool:
    """``{"Ref": ...}`` or ``{"Fn::...": ...}``: a value SAM's merge treats as a primitive."""
    return len(value) == 1 and (next(iter(value)) == "Ref" or str(next(iter(value))).startswith("Fn::"))


def _merge(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals merge: maps merge key by key, lists concatenate (globals first), the rest is local."""
    if (
        isinstance(global_value, dict)
        and isinstance(local_value, dict)
        and not (_intrinsic(global_value) or _intrinsic(local_value))
    ):
        merged = copy.deepcopy(global_value)
        for key, value in local_value.items():
            merged[key] = _merge(global_value[key], value) if key in global_value else copy.deepcopy(value)
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return copy.deepcopy(global_value) + copy.deepcopy(local_value)
    return copy.deepcopy(local_value)


def merge_globals(template: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the template with ``Globals`` merged into each serverless resource's Properties
    (for reading what a function declares; the stack itself is expanded by aws-sam-translator)."""
    merged = copy.deepcopy(dict(template))
    sections = merged.get("Globals") or {}
    for resource in (merged.get("Resources") or {}).values():
        for section, resource_type in GLOBALS_SECTIONS.items():
            if resource.get("Type") == resource_type and sections.get(section):
                resource["Properties"] = _merge(sections[section], resource.get("Properties") or {})
    return merged


def scalar_text(value: Any) -> str:
    """A scalar as CloudFormation writes it into a string (booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"expected a string, got {value!r}")


class TemplateDefaults:
    """Parameter references filled with the given values, else the parameters' defaults; nothing else
    resolved and every resource taken as enabled (no stack, no conditions)."""

    region = "us-east-1"
    account_id = "123456789012"
    partition = "aws"

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any] | None = None) -> None:
        declared = template.get("Parameters") or {}
        unknown = set(parameters or {}) - set(declared)
        if unknown:
            raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
        self.parameters = {name: (parameters or {}).get(name, spec.get("Default")) for name, spec in declared.items()}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"} and value["Ref"] in self.parameters:
                return self.parameters[value["Ref"]]
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def resource_enabled(self, logical_id: str) -> bool:
        return True
