"""CloudFormation / SAM template helpers for the local tooling (never deployed).

* ``load_template`` reads YAML (or JSON) with the short-form tags (``!Ref``, ``!GetAtt``, ``!Sub`` ...)
  turned into their long form (``{"Ref": ...}``, ``{"Fn::GetAtt": [...]}``, ...).
* ``merge_globals`` applies the SAM ``Globals`` section to the serverless resources the way SAM does.
* ``Resolver`` evaluates intrinsic functions given parameter values, pseudo parameters and a map of
  the local physical names and attributes of resources.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK_NAME = "airudder-local"

# SAM Globals section -> resource type it applies to.
GLOBALS_SECTIONS = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "HttpApi": "AWS::Serverless::HttpApi",
    "SimpleTable": "AWS::Serverless::SimpleTable",
    "StateMachine": "AWS::Serverless::StateMachine",
    "LayerVersion": "AWS::Serverless::LayerVersion",
}


class TemplateError(ValueError):
    """The template is malformed, or asks for something the resolver cannot do."""


class UnresolvedReference(TemplateError):
    """A Ref / GetAtt / Sub names something that has no value here."""


class _NoValue:
    """``AWS::NoValue``: the property it stands for is removed."""

    _instance: _NoValue | None = None

    def __new__(cls) -> _NoValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "AWS::NoValue"

    def __bool__(self) -> bool:
        return False


NO_VALUE: Any = _NoValue()


# ---------------------------------------------------------------------------------------------- loading


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands the CloudFormation short-form tags."""


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    value = _construct_node(loader, node)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt":
        if isinstance(value, str):
            logical_id, sep, attribute = value.partition(".")
            if not sep:
                raise TemplateError(f"!GetAtt {value!r}: expected LogicalId.Attribute")
            return {"Fn::GetAtt": [logical_id, attribute]}
        return {"Fn::GetAtt": value}
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


# ---------------------------------------------------------------------------------------------- helpers


def is_intrinsic(value: Any) -> bool:
    """A one-key mapping whose key is ``Ref`` or ``Fn::...`` (what SAM treats as a primitive value)."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = next(iter(value))
    return isinstance(key, str) and (key == "Ref" or key.startswith("Fn::"))


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


def sub_variables(text: str) -> list[str]:
    """Names a ``Fn::Sub`` string refers to (``${!Literal}`` excluded)."""
    return [m.group(1).strip() for m in _SUB_VARIABLE.finditer(text) if not m.group(1).startswith("!")]


def referenced_logical_ids(value: Any) -> set[str]:
    """Every name a value refers to through Ref, Fn::GetAtt or Fn::Sub (resources, parameters, pseudo)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if is_intrinsic(node):
                key, arg = next(iter(node.items()))
                if key == "Ref" and isinstance(arg, str):
                    found.add(arg)
                elif key == "Fn::GetAtt":
                    if isinstance(arg, list) and arg and isinstance(arg[0], str):
                        found.add(arg[0])
                    elif isinstance(arg, str):
                        found.add(arg.split(".", 1)[0])
                elif key == "Fn::Sub":
                    text, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})
                    if isinstance(text, str):
                        for name in sub_variables(text):
                            if name not in (variables or {}):
                                found.add(name.split(".", 1)[0])
                    walk(variables)
                    return
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return found


def _merge_sam(global_value: Any, local_value: Any) -> Any:
    """SAM's Globals merge: maps merge key by key, lists concatenate (globals first), the rest is local."""

    def kind(value: Any) -> str:
        if isinstance(value, dict) and not is_intrinsic(value):
            return "dict"
        if isinstance(value, list):
            return "list"
        return "primitive"

    if kind(global_value) != kind(local_value) or kind(local_value) == "primitive":
        return copy.deepcopy(local_value)
    if kind(local_value) == "list":
        return copy.deepcopy(global_value) + copy.deepcopy(local_value)
    merged = copy.deepcopy(global_value)
    for key, value in local_value.items():
        merged[key] = _merge_sam(global_value[key], value) if key in global_value else copy.deepcopy(value)
    return merged


def merge_globals(template: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the template with ``Globals`` merged into each serverless resource's Properties."""
    merged = copy.deepcopy(dict(template))
    sections = merged.get("Globals") or {}
    for logical_id, resource in (merged.get("Resources") or {}).items():
        if not isinstance(resource, dict):
            raise TemplateError(f"resource {logical_id} is not a mapping")
        for section, resource_type in GLOBALS_SECTIONS.items():
            if resource.get("Type") != resource_type or not sections.get(section):
                continue
            properties = resource.get("Properties") or {}
            resource["Properties"] = _merge_sam(sections[section], properties)
    return merged


def resources_of_type(template: Mapping[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") in types
    }


def _to_number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise TemplateError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise TemplateError(f"{value!r} is not a number") from None


def scalar_text(value: Any) -> str:
    """A scalar as CloudFormation writes it into a string (booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"expected a string, got {value!r}")


def partition_of(region: str) -> tuple[str, str]:
    """(partition, URL suffix) of a region."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    return "aws", "amazonaws.com"


# ---------------------------------------------------------------------------------------------- resolver


class Resolver:
    """Evaluates intrinsic functions of one template.

    ``resources`` maps a logical id to ``{"Ref": <value of Ref>, "<Attribute>": <value>, ...}`` (what
    ``Ref`` and ``Fn::GetAtt`` return for it). A Ref to a Number parameter gives an int (or float), a
    list-typed parameter gives a list of strings, anything else a string.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, Any] | None = None,
        resources: Mapping[str, Mapping[str, Any]] | None = None,
        region: str = DEFAULT_REGION,
        account_id: str = ACCOUNT_ID,
        stack_name: str = DEFAULT_STACK_NAME,
        imports: Mapping[str, Any] | None = None,
    ) -> None:
        self.template = template
        self.region = region
        self.account_id = account_id
        self.stack_name = stack_name
        self.resources: dict[str, Mapping[str, Any]] = dict(resources or {})
        self.imports = dict(imports or {})
        self.partition, self.url_suffix = partition_of(region)
        declared = template.get("Parameters") or {}
        unknown = set(parameters or {}) - set(declared)
        if unknown:
            raise TemplateError(f"parameters not declared in the template: {sorted(unknown)}")
        self._parameter_input = dict(parameters or {})
        self._condition_cache: dict[str, bool] = {}
        self._conditions_in_progress: set[str] = set()
        self._handlers: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::Not": self._not,
            "Fn::And": self._and,
            "Fn::Or": self._or,
            "Fn::Equals": self._equals,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": self._base64,
            "Fn::ImportValue": self._import_value,
            "Fn::GetAZs": self._get_azs,
            "Fn::Cidr": self._cidr,
            "Fn::Length": self._length,
            "Fn::ToJsonString": self._to_json_string,
        }

    # ------------------------------------------------------------------ public

    @property
    def stack_id(self) -> str:
        return (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/"
            "00000000-0000-0000-0000-000000000000"
        )

    def pseudo_parameters(self) -> dict[str, Any]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::Partition": self.partition,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }

    def parameter(self, name: str) -> Any:
        """Value of a template parameter (override, else default), typed as described above."""
        declared = (self.template.get("Parameters") or {}).get(name)
        if declared is None:
            raise UnresolvedReference(f"no parameter {name!r}")
        if name in self._parameter_input:
            raw = self._parameter_input[name]
        elif "Default" in declared:
            raw = declared["Default"]
        else:
            raise UnresolvedReference(f"parameter {name!r} has no default and no value was given")
        return self._typed_parameter(name, declared, raw)

    def parameters(self) -> dict[str, Any]:
        """All parameters that have a value."""
        values = {}
        for name, declared in (self.template.get("Parameters") or {}).items():
            if name in self._parameter_input or "Default" in declared:
                values[name] = self.parameter(name)
        return values

    def set_resource(self, logical_id: str, values: Mapping[str, Any]) -> None:
        self.resources[logical_id] = values

    def resolve(self, value: Any) -> Any:
        """Evaluate every intrinsic inside ``value``; keys and items that resolve to NoValue are dropped."""
        if isinstance(value, dict):
            if is_intrinsic(value):
                key, arg = next(iter(value.items()))
                handler = self._handlers.get(key)
                if handler is None:
                    raise TemplateError(f"{key} is not supported locally")
                return handler(arg)
            resolved = {}
            for key, item in value.items():
                result = self.resolve(item)
                if result is not NO_VALUE:
                    resolved[key] = result
            return resolved
        if isinstance(value, list):
            return [result for result in (self.resolve(item) for item in value) if result is not NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        """Value of a named condition of the template's ``Conditions`` section."""
        if name in self._condition_cache:
            return self._condition_cache[name]
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise UnresolvedReference(f"no condition {name!r}")
        if name in self._conditions_in_progress:
            raise TemplateError(f"condition {name!r} refers to itself")
        self._conditions_in_progress.add(name)
        try:
            result = self._condition_value(conditions[name])
        finally:
            self._conditions_in_progress.discard(name)
        self._condition_cache[name] = result
        return result

    def resource_enabled(self, logical_id: str) -> bool:
        """False when the resource has a ``Condition`` that is false."""
        resource = (self.template.get("Resources") or {}).get(logical_id)
        if resource is None:
            raise UnresolvedReference(f"no resource {logical_id!r}")
        name = resource.get("Condition")
        return True if name is None else self.condition(name)

    # ------------------------------------------------------------------ parameters

    def _typed_parameter(self, name: str, declared: Mapping[str, Any], raw: Any) -> Any:
        kind = str(declared.get("Type", "String"))
        if kind.startswith("List<") or kind == "CommaDelimitedList":
            items = raw if isinstance(raw, list) else [part.strip() for part in scalar_text(raw).split(",")]
            values: Any = [scalar_text(item) for item in items]
            checked = values
        elif kind == "Number":
            values = _to_number(raw)
            checked = [values]
        else:
            values = scalar_text(raw)
            checked = [values]
        allowed = declared.get("AllowedValues")
        if allowed is not None:
            allowed_text = {scalar_text(item) for item in allowed}
            bad = [item for item in checked if scalar_text(item) not in allowed_text]
            if bad:
                raise TemplateError(f"parameter {name}: {bad} not in AllowedValues")
        pattern = declared.get("AllowedPattern")
        if pattern is not None:
            bad = [item for item in checked if not re.fullmatch(pattern, scalar_text(item))]
            if bad:
                raise TemplateError(f"parameter {name}: {bad} does not match AllowedPattern {pattern}")
        return values

    # ------------------------------------------------------------------ intrinsic functions

    def _resource_values(self, logical_id: str) -> Mapping[str, Any]:
        if logical_id in self.resources:
            return self.resources[logical_id]
        if logical_id in (self.template.get("Resources") or {}):
            raise UnresolvedReference(f"resource {logical_id!r} has no local value")
        raise UnresolvedReference(f"{logical_id!r} is neither a parameter nor a resource of the template")

    def _ref(self, name: Any) -> Any:
        name = self.resolve(name)
        if not isinstance(name, str):
            raise TemplateError(f"Ref needs a name, got {name!r}")
        pseudo = self.pseudo_parameters()
        if name in pseudo:
            return pseudo[name]
        if name in (self.template.get("Parameters") or {}):
            return self.parameter(name)
        values = self._resource_values(name)
        if "Ref" not in values:
            raise UnresolvedReference(f"resource {name!r} has no Ref value")
        return values["Ref"]

    def _get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if not isinstance(arg, list) or len(arg) != 2:
            raise TemplateError(f"Fn::GetAtt needs [LogicalId, Attribute], got {arg!r}")
        logical_id, attribute = arg[0], self.resolve(arg[1])
        values = self._resource_values(logical_id)
        if attribute not in values or attribute == "Ref":
            raise UnresolvedReference(f"resource {logical_id!r} has no attribute {attribute!r} here")
        return values[attribute]

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            if len(arg) != 2 or not isinstance(arg[1], dict):
                raise TemplateError("Fn::Sub needs a string or [string, {variables}]")
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}
        if not isinstance(text, str):
            raise TemplateError(f"Fn::Sub needs a string, got {text!r}")

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            name = inner.strip()
            if name in variables:
                return scalar_text(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return scalar_text(self._get_att([logical_id, attribute]))
            return scalar_text(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)

    def _list_arg(self, arg: Any, function: str, length: int | None = None) -> list[Any]:
        if not isinstance(arg, list) or (length is not None and len(arg) != length):
            raise TemplateError(f"{function}: bad arguments {arg!r}")
        return arg

    def _resolved_list(self, value: Any, function: str) -> list[Any]:
        resolved = self.resolve(value)
        if not isinstance(resolved, list):
            raise TemplateError(f"{function} needs a list, got {resolved!r}")
        return resolved

    def _join(self, arg: Any) -> str:
        delimiter, items = self._list_arg(arg, "Fn::Join", 2)
        return scalar_text(self.resolve(delimiter)).join(
            scalar_text(item) for item in self._resolved_list(items, "Fn::Join")
        )

    def _select(self, arg: Any) -> Any:
        index, items = self._list_arg(arg, "Fn::Select", 2)
        position = int(_to_number(self.resolve(index)))
        values = self._resolved_list(items, "Fn::Select")
        if not 0 <= position < len(values):
            raise TemplateError(f"Fn::Select index {position} out of range")
        return values[position]

    def _split(self, arg: Any) -> list[str]:
        delimiter, source = self._list_arg(arg, "Fn::Split", 2)
        return scalar_text(self.resolve(source)).split(scalar_text(self.resolve(delimiter)))

    def _if(self, arg: Any) -> Any:
        name, when_true, when_false = self._list_arg(arg, "Fn::If", 3)
        return self.resolve(when_true if self.condition(name) else when_false)

    def _condition_value(self, expression: Any) -> bool:
        if isinstance(expression, dict) and len(expression) == 1 and "Condition" in expression:
            return self.condition(expression["Condition"])
        value = self.resolve(expression)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise TemplateError(f"not a condition: {expression!r}")

    def _not(self, arg: Any) -> bool:
        (expression,) = self._list_arg(arg, "Fn::Not", 1)
        return not self._condition_value(expression)

    def _and(self, arg: Any) -> bool:
        return all(self._condition_value(item) for item in self._list_arg(arg, "Fn::And"))

    def _or(self, arg: Any) -> bool:
        return any(self._condition_value(item) for item in self._list_arg(arg, "Fn::Or"))

    def _equals(self, arg: Any) -> bool:
        left, right = (self.resolve(item) for item in self._list_arg(arg, "Fn::Equals", 2))

        def normal(value: Any) -> Any:
            if isinstance(value, list):
                return [normal(item) for item in value]
            if isinstance(value, dict):
                return {key: normal(item) for key, item in value.items()}
            return scalar_text(value)

        return bool(normal(left) == normal(right))

    def _find_in_map(self, arg: Any) -> Any:
        items = self._list_arg(arg, "Fn::FindInMap")
        if len(items) not in (3, 4):
            raise TemplateError(f"Fn::FindInMap: bad arguments {arg!r}")
        map_name, top, second = (scalar_text(self.resolve(item)) for item in items[:3])
        try:
            return self.resolve(self.template["Mappings"][map_name][top][second])
        except (KeyError, TypeError):
            if len(items) == 4 and isinstance(items[3], dict) and "DefaultValue" in items[3]:
                return self.resolve(items[3]["DefaultValue"])
            raise UnresolvedReference(f"Fn::FindInMap: no {map_name}/{top}/{second}") from None

    def _base64(self, arg: Any) -> str:
        return base64.b64encode(scalar_text(self.resolve(arg)).encode("utf-8")).decode("ascii")

    def _import_value(self, arg: Any) -> Any:
        name = scalar_text(self.resolve(arg))
        if name not in self.imports:
            raise UnresolvedReference(f"Fn::ImportValue: no export {name!r} given")
        return self.imports[name]

    def _get_azs(self, arg: Any) -> list[str]:
        region = self.resolve(arg) or self.region
        return [f"{region}{zone}" for zone in "abc"]

    def _cidr(self, arg: Any) -> list[str]:
        block, count, bits = (self.resolve(item) for item in self._list_arg(arg, "Fn::Cidr", 3))
        network = ipaddress.ip_network(scalar_text(block), strict=False)
        new_prefix = network.max_prefixlen - int(_to_number(bits))
        subnets = network.subnets(new_prefix=new_prefix)
        return [str(subnet) for _, subnet in zip(range(int(_to_number(count))), subnets, strict=False)]

    def _length(self, arg: Any) -> int:
        return len(self._resolved_list(arg, "Fn::Length"))

    def _to_json_string(self, arg: Any) -> str:
        return json.dumps(self.resolve(arg), separators=(",", ":"))


def topological_order(nodes: Iterable[str], dependencies: Mapping[str, set[str]]) -> list[str]:
    """Nodes ordered so that each comes after what it depends on (only edges between ``nodes`` count)."""
    pending = list(nodes)
    members = set(pending)
    ordered: list[str] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        if node in visiting:
            raise TemplateError(f"circular dependency involving {node}")
        visiting.add(node)
        for dependency in sorted(dependencies.get(node, set()) & members):
            visit(dependency)
        visiting.discard(node)
        done.add(node)
        ordered.append(node)

    for node in pending:
        visit(node)
    return ordered


def resource_dependencies(template: Mapping[str, Any]) -> dict[str, set[str]]:
    """Logical id -> the resources it refers to (Ref, GetAtt, Sub, DependsOn)."""
    resources = template.get("Resources") or {}
    result: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        found = referenced_logical_ids(resource.get("Properties") or {})
        depends_on = resource.get("DependsOn") or []
        found.update([depends_on] if isinstance(depends_on, str) else depends_on)
        result[logical_id] = {name for name in found if name in resources and name != logical_id}
    return result
