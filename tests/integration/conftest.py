"""Fixtures for tests that run the stack on an embedded moto server and the local gateway, over HTTP; the
helpers they hand out live in stack_support.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airudder_ingest.models import all_models
from tools.local_aws.stack import TEST_TIMEOUT_SCALE, LocalStack

from .stack_support import Client, Inspector

# A running local stack sets the test process's copy of the layer aside and imports the handlers' own
# (a fresh container each); a model module the test process's copy imports lazily while a stack runs
# would come from the stack's copy, with that copy's classes (IdentifierMissing among them). Resolved
# here, before any stack starts, every route's model stays this copy's.
all_models()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """A fresh local stack per test module (moto starts empty when no other stack is running)."""
    with LocalStack(timeout_scale=TEST_TIMEOUT_SCALE) as running:
        yield running


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Client:
    return Client(stack)


@pytest.fixture(scope="module")
def inspector(stack: LocalStack) -> Inspector:
    return Inspector(stack)
