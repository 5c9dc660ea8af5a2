# Developer entry points: `make run` starts the local demo, `make test` checks everything.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv, installed on first use when the machine has none (see .ci/uv).
UV := $(CURDIR)/.ci/uv
# --frozen: run exactly what uv.lock pins; never re-lock behind the developer's back.
RUN := $(UV) run --frozen
SIMULATOR_PORT ?= 8700
DAGSTER_PORT ?= 3000
export UV SIMULATOR_PORT DAGSTER_PORT

.PHONY: help uv sync test chaos lint format run bench bench-small clean deploy-local deploy-down test-deploy

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

uv: ## Find or install uv and show its version
	@$(UV) --version

sync: uv ## Install the locked dependencies into .venv
	$(UV) sync --frozen

test: sync ## Lint, check formatting, then run the test suite
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) pytest

chaos: sync ## Random fault and kill cases on SQLite and PostgreSQL, seeded; prints a table (CHAOS_SEED=n replays)
	@mkdir -p .data
	$(RUN) python -m tests.reliability.chaos 2> .data/chaos.log

lint: sync ## Lint and check formatting without changing files
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: sync ## Fix lint findings that are safe to fix, then format
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

run: sync ## Start the Assignar simulator and the Dagster UI (Ctrl-C stops both)
	scripts/run.sh

bench: sync ## Benchmarks, scale 0.1 over 3 years (sized for 20 min; BENCH_ARGS="--scale 1": whole large tenant, ~1 h, 8 GB; --days N: shorter history): appends to bench/RESULTS.md
	$(RUN) --group bench python -m bench $(BENCH_ARGS)

bench-small: sync ## The same benchmarks on a small tenant (a few minutes)
	$(RUN) --group bench python -m bench --scale 0.05 --days 62 --tenants 20 $(BENCH_ARGS)

deploy-local: sync ## Start the production topology on this machine (deploy/; stop: make deploy-down)
	$(RUN) python -m deploy.local up

deploy-down: sync ## Stop what make deploy-local started (data and logs stay in .deploy/)
	$(RUN) python -m deploy.local down

test-deploy: sync ## Bring the production topology up and test it end to end (about 4 minutes)
	$(RUN) pytest -m deploy tests/deploy

clean: ## Remove the local Dagster home and tool caches (keeps .venv)
	rm -rf .dagster_home .pytest_cache .ruff_cache .hypothesis
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
