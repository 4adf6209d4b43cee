# AMI Guard: every entry point sets itself up from the project's own files.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := true
export CDK_DISABLE_CLI_TELEMETRY := true
export PIP_DISABLE_PIP_VERSION_CHECK := 1
CDK := npx --no-install cdk --no-notices --no-version-reporting

.PHONY: setup test lint unit fuzz synth deploy clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest

test: lint unit

fuzz: setup
	$(VENV)/bin/pytest -m deep tests/unit/test_hostile_input.py

synth: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) synth --quiet
	$(PY) -m ami_guard_cdk.summary cdk.out

deploy: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK) deploy $(CDK_ARGS)

.PHONY: demo
# make demo DEMO_ARGS=--remediate (also --json, --keep, --organization): AMI Guard deployed into an emulated account
# (--organization: an emulated AWS Organization, the hub in its security account, members in two accounts), risky changes played
demo: setup
	$(PY) -m demo $(DEMO_ARGS)

.PHONY: e2e
# the end-to-end tests alone (make test runs them too): one deployment per configuration, the scenario played
e2e: setup
	$(VENV)/bin/pytest -m e2e tests/e2e

.PHONY: bench
BENCH_VENV ?= .venv-bench
# make bench (BENCH_ARGS="--max-runs 81" to allow more rounds): cold starts (the asset loaded from its bytecode, as on
# Lambda) against their floor and against Cloud Custodian, paired round by round, judged on the 95% interval of the
# median ratio (more rounds while it straddles a limit); warm per-event time, AWS calls per event, asset size. Writes
# bench/results.json, bench/RESULTS.md and the README's figures; fails when a budget is missed or still undecided after
# the last round
bench: $(VENV)/.installed $(BENCH_VENV)/.installed
	$(PY) -m bench --custodian-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)

# Cloud Custodian in an environment of its own (its pins are not ours); the .gitignore keeps it out of git and ruff
$(BENCH_VENV)/.installed: bench/requirements-custodian.txt
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	echo '*' > $(BENCH_VENV)/.gitignore
	$(BENCH_VENV)/bin/python -m pip install --quiet -r bench/requirements-custodian.txt
	touch $@

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
	rm -rf $(BENCH_VENV)
