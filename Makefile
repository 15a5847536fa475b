# Self-documenting: `make` or `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Use uv from PATH, else the one pip installs; every target bootstraps it on a fresh machine.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
SYNC := .venv/.synced

.PHONY: help run test check lint type imports deploy-check fmt migrate docs clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(SYNC): uv.lock pyproject.toml libs/servicekit/pyproject.toml services/user_service/pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet --user uv || \
		python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen
	@touch $@

run: $(SYNC) ## Serve the API on http://127.0.0.1:8000 (SQLite + embedded Redis unless DATABASE_URL / REDIS_URL are set)
	$(UV) run --frozen user-service serve

test: $(SYNC) ## Run the test suite (local PostgreSQL/Redis when reachable, else SQLite + embedded Redis)
	$(UV) run --frozen pytest

check: lint type imports deploy-check ## Lint, format check, mypy strict, import layers and deploy/ validation

lint: $(SYNC) ## ruff lint and format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

type: $(SYNC) ## mypy strict
	$(UV) run --frozen mypy libs/servicekit/src services/user_service/src libs/servicekit/tests services/user_service/tests

imports: $(SYNC) ## import-linter: layers point one way
	$(UV) run --frozen lint-imports

deploy-check: $(SYNC) ## Validate deploy/: hadolint, image smoke run, Compose, nginx, Kubernetes, Prometheus rules
	$(UV) run --frozen bash scripts/deploy-check.sh

fmt: $(SYNC) ## Format and auto-fix
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

migrate: $(SYNC) ## Apply database migrations to DATABASE_URL (or the local SQLite file)
	$(UV) run --frozen user-service migrate

docs: $(SYNC) ## Regenerate docs/configuration.md from the settings classes
	$(UV) run --frozen python scripts/gen_config_docs.py

.PHONY: bench
bench: $(SYNC) ## Load-test user_service vs a bare FastAPI baseline with wrk (needs PostgreSQL on 127.0.0.1:5432; ~4 min)
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || true; $(UV) run --frozen python bench/run.py

clean: ## Remove the virtualenv, caches and the local data folder
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache data
