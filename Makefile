# Every target creates .venv and installs the project on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CDK := node_modules/.bin/cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install run test lint format unit integration e2e infra-test synth layer bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,infra]'
	touch $(STAMP)

install: $(STAMP)

## run: the whole engine on this machine (moto server, API on :8080, worker, scheduler)
run: $(STAMP)
	$(BIN)/taskengine dev

## test: lint, types and the whole suite (unit, integration, infra, end to end)
test: lint
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

e2e: $(STAMP)
	$(BIN)/pytest tests/e2e

infra-test: $(STAMP)
	$(BIN)/pytest tests/infra

$(CDK): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $(CDK)

layer: $(STAMP)
	$(BIN)/python layers/build_layer.py

## synth: the CloudFormation template in cdk.out/ (no Docker, no AWS account)
synth: $(STAMP) $(CDK) layer
	$(CDK) synth --quiet

bench: $(STAMP)
	$(BIN)/python benchmarks/e2e_throughput.py

clean:
	rm -rf $(VENV) cdk.out build node_modules .pytest_cache .mypy_cache .ruff_cache
