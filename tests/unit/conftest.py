"""Fixtures of the unit tests: AWS in process (moto's mock), built once here (aws_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .aws_support import empty_aws, ingest_aws


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An empty in-process AWS for the test."""
    with empty_aws(monkeypatch):
        yield


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The events table, archive bucket, recordings queue and token secret, in process; the clients by name."""
    with ingest_aws(monkeypatch) as clients:
        yield clients
