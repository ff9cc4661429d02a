# Every target bootstraps its own virtual environment from the pinned requirements.
SHELL := /bin/bash
# The Lambda runtime is python3.13: use that interpreter locally when the machine has it.
PYTHON_BOOT ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) $(shell command -v python3.13) $(shell command -v python3))
VENV := .venv
PY := $(VENV)/bin/python
PIP_QUIET := --quiet --disable-pip-version-check
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: demo serve test test-unit test-integration lint bench drills build validate events redrive clean

$(VENV)/.stamp: requirements.txt requirements-dev.txt
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import boto3, moto, pydantic, aws_lambda_powertools, pytest"
	touch $@

venv: $(VENV)/.stamp

## The stack on embedded AWS, fed with every sample event twice, then a summary.
demo: $(VENV)/.stamp
	$(PY) -m tools.demo

## The stack on embedded AWS until Ctrl-C: moto on MOTO_PORT (5000), the gateway on PORT (3000).
serve: $(VENV)/.stamp
	$(PY) -m tools.serve

## Unit and integration tests (integration tests start their own moto server and gateway).
test: $(VENV)/.stamp
	$(PY) -m pytest

test-unit: $(VENV)/.stamp
	$(PY) -m pytest tests/unit

test-integration: $(VENV)/.stamp
	$(PY) -m pytest tests/integration

events: $(VENV)/.stamp
	$(PY) -m tools.apigw_events

clean:
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam .pytest_cache .mypy_cache .ruff_cache
