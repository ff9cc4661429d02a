# Every target bootstraps its own virtual environment from the pinned requirements.
SHELL := /bin/bash
# The Lambda runtime is python3.13: use that interpreter locally when the machine has it.
PYTHON_BOOT ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) $(shell command -v python3.13) $(shell command -v python3))
VENV := .venv
PY := $(VENV)/bin/python
PIP_QUIET := --quiet --disable-pip-version-check
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: demo serve test test-unit test-integration lint bench drills build validate events redrive republish clean

$(VENV)/.stamp: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
	@# The project itself, editable: the airudder_ingest package and the airudder-data command.
	set -o pipefail; $(PY) -m pip install $(PIP_QUIET) --no-deps -e . $(PIP_FILTER)
	$(PY) -c "import boto3, moto, pydantic, aws_lambda_powertools, pytest"
	touch $@

venv: $(VENV)/.stamp

## The stack on embedded AWS, fed with every sample event twice, then a summary.
demo: $(VENV)/.stamp
	$(PY) -m tools.demo

## The stack on embedded AWS until Ctrl-C: moto on MOTO_PORT (5000), the gateway on PORT (3000).
serve: $(VENV)/.stamp
	$(PY) -m tools.demo.serve

## Unit and integration tests (integration tests start their own moto server and gateway), on TEST_WORKERS
## processes (pytest-xdist); each test file runs whole, in order, on one of them (--dist loadfile), so a file's
## module-scoped stack is built once. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2
PYTEST_WORKERS = -n $(TEST_WORKERS) --dist loadfile
test: $(VENV)/.stamp
	$(PY) -m pytest $(PYTEST_WORKERS)

test-unit: $(VENV)/.stamp
	$(PY) -m pytest $(PYTEST_WORKERS) tests/unit

test-integration: $(VENV)/.stamp
	$(PY) -m pytest $(PYTEST_WORKERS) tests/integration

## Benchmarks, not part of `make test`: one line per figure, each a ratio measured side by side in this
## run on the embedded moto server; the same figures in bench/results.json (docs/performance.md).
bench: $(VENV)/.stamp
	$(PY) -m bench.run --json bench/results.json

## The failure drills at full size (`make test` runs them small): 2,000 webhooks through an AWS outage,
## handlers killed mid-ingest, 10,000 hostile requests, 50 concurrent senders per body.
drills: $(VENV)/.stamp
	DRILLS=full $(PY) -m pytest tests/integration/test_drills.py --durations=0

events: $(VENV)/.stamp
	$(PY) -m tools.local_aws.apigw_events

## Recordings that gave up (dead-letter queue) back to the recordings queue: STACK=<name> for a deployed
## stack (its outputs), QUEUE_URL=... DLQ_URL=... for any pair, else the local stack of `make serve` (its outputs too).
redrive: $(VENV)/.stamp
	$(PY) -m airudder_ops.redrive $(if $(STACK),--stack-name $(STACK),$(if $(QUEUE_URL),--queue-url $(QUEUE_URL) --dlq-url $(DLQ_URL),--stack-name airudder-local --endpoint-url http://127.0.0.1:$(or $(MOTO_PORT),5000))) $(REDRIVE_ARGS)

## Events the fan-out could not publish (its on-failure queue) published again: STACK=<name> for a deployed
## stack (its outputs), or REPUBLISH_ARGS="--queue-url URL --event-bus NAME [--endpoint-url URL]".
republish: $(VENV)/.stamp
	$(PY) -m airudder_ops.republish $(if $(STACK),--stack-name $(STACK)) $(REPUBLISH_ARGS)

clean:
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam build .pytest_cache .mypy_cache .ruff_cache

# ---------------------------------------------------------------- lint, checkov, validate, build
# aws-sam-cli and checkov pin boto3/click/packaging/pydantic versions that clash with the runtime pins,
# so each has a venv of its own, made from a fully pinned file.
VENV_SAM := .venv-sam
VENV_CHECKOV := .venv-checkov
SAM := $(VENV_SAM)/bin/sam
CHECKOV := $(VENV_CHECKOV)/bin/checkov
EXPANDED := build/template.expanded.json
# Drop the pip warnings about this machine's absent local indexes; keep pip's own exit status.
PIP_FILTER := 2>&1 | { grep -v "^WARNING: Location" || true; }
export SAM_CLI_TELEMETRY ?= 0
# `sam build` for the python3.13 runtime needs a python3.13 on PATH; pyenv keeps its 3.13 off PATH.
PY313_BIN := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin))
SAM_BUILD_ENV := PATH="$(if $(PY313_BIN),$(PY313_BIN):)$$PATH"

.PHONY: venv-sam venv-checkov lint-ruff lint-mypy lint-imports lint-complexity lint-cfn checkov

$(VENV_SAM)/.stamp: requirements-sam.txt
	rm -rf $(VENV_SAM)
	$(PYTHON_BOOT) -m venv $(VENV_SAM)
	set -o pipefail; $(VENV_SAM)/bin/python -m pip install $(PIP_QUIET) -r requirements-sam.txt $(PIP_FILTER)
	$(SAM) --version
	touch $@

$(VENV_CHECKOV)/.stamp: requirements-checkov.txt
	rm -rf $(VENV_CHECKOV)
	$(PYTHON_BOOT) -m venv $(VENV_CHECKOV)
	set -o pipefail; $(VENV_CHECKOV)/bin/python -m pip install $(PIP_QUIET) -r requirements-checkov.txt $(PIP_FILTER)
	$(CHECKOV) --version
	touch $@

venv-sam: $(VENV_SAM)/.stamp
venv-checkov: $(VENV_CHECKOV)/.stamp

## ruff, mypy, import contracts, the complexity gate, cfn-lint on the template and on its SAM expansion,
## checkov (`make -k lint` shows every failure).
lint: lint-ruff lint-mypy lint-imports lint-complexity lint-cfn checkov

lint-ruff: $(VENV)/.stamp
	$(VENV)/bin/ruff check .

lint-mypy: $(VENV)/.stamp
	$(PY) -m mypy layers/ingest ops functions tools tests

# The layer's floors and "deployed code never imports the operator tools or tools/" (pyproject.toml).
lint-imports: $(VENV)/.stamp
	PYTHONPATH=layers/ingest:ops:. $(VENV)/bin/lint-imports

# No function above radon grade B unless a `# complexity: <reason>` comment on it says why
# (tools/complexity_gate.py: xenon has no per-function exception); xenon gates modules and the average.
COMPLEXITY_PATHS := layers/ingest ops functions
lint-complexity: $(VENV)/.stamp
	$(PY) -m tools.complexity_gate --max B $(COMPLEXITY_PATHS)
	$(VENV)/bin/xenon --max-absolute F --max-modules B --max-average A $(COMPLEXITY_PATHS)

# cfn-lint does not expand AWS::Serverless::* resources: a bad !Ref or !GetAtt inside a function or in
# Globals passes it (and `sam validate --lint`). Linting the expanded template catches it.
lint-cfn: $(VENV)/.stamp $(EXPANDED)
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/cfn-lint $(EXPANDED)

# The SAM transform, offline (fake region and account, bundled managed-policy map): see tools/local_aws/expand_sam.py.
$(EXPANDED): template.yaml tools/local_aws/expand_sam.py $(VENV)/.stamp
	$(PY) -m tools.local_aws.expand_sam template.yaml -o $@

## checkov on the SAM-expanded template; skipped checks and their reasons: .checkov.yaml and README ("checkov").
checkov: $(VENV_CHECKOV)/.stamp $(EXPANDED)
	$(CHECKOV) --config-file .checkov.yaml --file $(EXPANDED)

## `sam validate --lint` (offline: AWS_DEFAULT_REGION is set above, no credentials needed).
validate: $(VENV_SAM)/.stamp
	$(SAM) validate --lint --template template.yaml

## `sam build` without a container: arm64 python3.13 layer and functions in .aws-sam/build.
build: $(VENV_SAM)/.stamp
	@$(SAM_BUILD_ENV) python3.13 -c "" 2>/dev/null || { \
	  echo "make build: no working python3.13 on PATH (sam needs one for the python3.13 runtime);" \
	       "install it, e.g. with pyenv, or put it on PATH" >&2; exit 1; }
	$(SAM_BUILD_ENV) $(SAM) build --template template.yaml
	@# sam build ships sources only and /opt is read-only: every cold start would compile the whole layer
	@# (cold start 2.6x a boto3-only handler instead of 1.5x; docs/performance.md). Bytecode that Python
	@# uses without checking the sources' times (the deployment zip does not keep them).
	$(SAM_BUILD_ENV) python3.13 -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build
	@# Every compiled module in the artifacts must be an aarch64 ELF (e_machine 0xb7), pydantic_core above all.
	@bad=""; for so in $$(find .aws-sam/build -type f -name '*.so*'); do \
	   [ "$$(od -An -tx1 -j18 -N2 "$$so" | tr -d ' \n')" = "b700" ] || bad="$$bad $$so"; done; \
	 if [ -n "$$bad" ]; then echo "make build: modules not built for arm64:$$bad" >&2; exit 1; fi; \
	 if ! ls .aws-sam/build/IngestLayer/python/pydantic_core/_pydantic_core.cpython-313-aarch64-linux-gnu.so \
	      >/dev/null 2>&1; then echo "make build: no cp313 aarch64 pydantic_core in the layer" >&2; exit 1; fi; \
	 echo "make build: every compiled module is arm64; pydantic_core is the cp313 aarch64 build"
