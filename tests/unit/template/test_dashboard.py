"""The operations dashboard shows only metrics the code really emits.

The names are read from the code (every metric name the layer can pass to add_metric / single_metric),
not from a list here, so a metric renamed or added in the code is checked as it is."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

from tools.local_aws import template as cfn

ROOT = Path(__file__).resolve().parents[3]
LAYER = ROOT / "layers" / "ingest" / "airudder_ingest"
NAMESPACE = "AirudderIngest"
METRIC_CALLS = {"add_metric", "single_metric"}
_CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]+$")


def _strings(node: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def metric_names_in_code() -> set[str]:
    """Names passed as ``name=`` to add_metric / single_metric anywhere in the layer. A name that is not
    a literal (``name=name`` from a loop over a dict, ``_OUTCOME_METRICS.get(...)``, a constant) is
    resolved to the CamelCase strings of the module's dict literals and module-level constants."""
    names: set[str] = set()
    for path in LAYER.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        module_strings: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                module_strings |= _strings(node)
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
                module_strings |= _strings(node.value)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called not in METRIC_CALLS:
                continue
            for keyword in node.keywords:
                if keyword.arg != "name":
                    continue
                literal = {s for s in _strings(keyword.value) if _CAMEL.match(s)}
                names |= literal
                if not isinstance(keyword.value, ast.Constant):
                    names |= {s for s in module_strings if _CAMEL.match(s)}
    return names


def dashboard_body() -> dict[str, Any]:
    template = cfn.load_template(ROOT / "template.yaml")
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    text = body[0] if isinstance(body, list) else body
    # ${Name} and ${Res.Attr} are CloudFormation's; ${!X} stays literal as ${X}.
    return json.loads(re.sub(r"\$\{(?!!)[^}]*\}", "resolved", text).replace("${!", "${"))


def expression_metrics(expression: str) -> list[tuple[str, str]]:
    """(namespace, metric name) of a SEARCH or Metrics Insights expression."""
    found: list[tuple[str, str]] = []
    namespace = re.search(r"\{([^,}]+)", expression)
    for name in re.findall(r'MetricName="([^"]+)"', expression):
        found.append((namespace.group(1) if namespace else "", name))
    # Metrics Insights: SELECT SUM(<metric>) FROM SCHEMA(<namespace>, ...)
    for name, space in re.findall(r"SELECT \w+\((\w+)\) FROM SCHEMA\(\s*\"?([\w/]+)", expression):
        found.append((space, name))
    return found


def dashboard_metrics(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(namespace, metric name) of every metric of every widget, SEARCH expressions included."""
    found: list[tuple[str, str]] = []
    for widget in body["widgets"]:
        previous: list[Any] = []
        for row in (widget.get("properties") or {}).get("metrics") or []:
            if len(row) == 1 and isinstance(row[0], dict) and "expression" in row[0]:
                found.extend(expression_metrics(row[0]["expression"]))
                continue
            parts = [p for p in row if not isinstance(p, dict)]
            parts = [previous[i] if p == "." and i < len(previous) else p for i, p in enumerate(parts)]
            previous = parts
            found.append((parts[0], parts[1]))
    return found


def test_the_names_are_read_from_the_code() -> None:
    names = metric_names_in_code()
    # Each kind of call site: a literal, a ternary, a dict lookup, a loop over a dict, single_metric.
    assert {"Stored", "RecordingsGaveUp", "RecordingsFailed", "SyncRecordsNew", "Deliveries"} <= names
    assert "EventsPublished" in names and "NotAMetric" not in names


def test_every_dashboard_metric_of_our_namespace_is_emitted_by_the_code() -> None:
    ours = {name for namespace, name in dashboard_metrics(dashboard_body()) if namespace == NAMESPACE}
    assert ours, "the dashboard shows none of the stack's own metrics"
    missing = ours - metric_names_in_code()
    assert not missing, f"the dashboard shows metrics the code never emits: {sorted(missing)}"


def test_the_dashboard_covers_what_operators_asked_for() -> None:
    shown = dashboard_metrics(dashboard_body())
    names = {name for _, name in shown}
    for wanted in ("Deliveries", "4xx", "5xx", "Latency", "RecordingsArchived", "IteratorAge"):
        assert wanted in names
    for wanted in ("EventsPublished", "EventsPublishFailed", "SyncRecordsNew", "ApproximateNumberOfMessagesVisible"):
        assert wanted in names
    every_expression = [
        row[0]["expression"]
        for widget in dashboard_body()["widgets"]
        for row in (widget.get("properties") or {}).get("metrics") or []
        if isinstance(row[0], dict)
    ]
    # every expression names a metric the parser finds (none slips past the check above)
    assert every_expression and all(expression_metrics(expression) for expression in every_expression)
    assert "Unreadable" in names
    texts = json.dumps(dashboard_body())
    assert "p50" in texts and "p99" in texts
