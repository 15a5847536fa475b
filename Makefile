# Self-documenting: `make` or `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# Use uv from PATH, else the one pip installs; every target bootstraps it on a fresh machine.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
SYNC := .venv/.synced

.PHONY: help run test verify scale-test cluster-test check lint type imports pre-commit bandit audit deploy-check fmt migrate docs clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(SYNC): uv.lock pyproject.toml libs/servicekit/pyproject.toml services/user_service/pyproject.toml services/notification_service/pyproject.toml
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet --user uv || \
		python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --frozen
	@touch $@

run: $(SYNC) ## Serve the system: user service on :8000, notification service on :8001 (SQLite files + one embedded Redis unless DATABASE_URL / NOTIFICATION_DATABASE_URL / REDIS_URL are set)
	$(UV) run --frozen python scripts/run_system.py

test: $(SYNC) ## Run the test suite (local PostgreSQL/Redis when reachable, else SQLite + embedded Redis)
	bash scripts/ensure-tools.sh oathtool
	$(UV) run --frozen pytest

scale-test: $(SYNC) ## Scale-out: three processes behind nginx (shared state, kill -9), a Redis Cluster node restart, then the Redis Cluster subset (~1.5 min)
	bash scripts/ensure-tools.sh
	$(UV) run --frozen pytest -m scale services/user_service/tests/scale libs/servicekit/tests/test_redis_cluster_faults.py
	$(MAKE) --no-print-directory cluster-test

# The tests that touch Redis (cache, rate limits, lockout, denylist and its mirror, events, change
# feed, sessions, tokens, user cache, resource service), against a three-primary Redis Cluster.
CLUSTER_TESTS := \
	libs/servicekit/tests/test_cache.py libs/servicekit/tests/test_cache_degraded.py \
	libs/servicekit/tests/test_rate_limit.py libs/servicekit/tests/test_redis_pool.py \
	libs/servicekit/tests/test_denylist_mirror.py libs/servicekit/tests/test_health.py \
	libs/servicekit/tests/test_tracing.py libs/servicekit/tests/test_outbox.py libs/servicekit/tests/test_consumers.py \
	libs/servicekit/tests/test_event_operations.py \
	services/user_service/tests/api/test_auth.py services/user_service/tests/api/test_rate_limits.py \
	services/user_service/tests/api/test_sessions.py services/user_service/tests/api/test_tokens.py \
	services/user_service/tests/api/test_token_endpoints.py services/user_service/tests/api/test_health.py \
	services/user_service/tests/api/test_admin_changes.py \
	services/user_service/tests/integration/test_denylist.py \
	services/user_service/tests/integration/test_user_cache.py \
	services/user_service/tests/integration/test_resource_service.py \
	services/user_service/tests/integration/test_concurrency.py \
	services/user_service/tests/integration/test_events.py

cluster-test: $(SYNC) ## Run the Redis-dependent tests against a real 3-primary Redis Cluster on loopback ports (~1 min)
	SERVICEKIT_TEST_BACKENDS=cluster $(UV) run --frozen pytest $(CLUSTER_TESTS)

verify: $(SYNC) ## Fault injection, fuzzing, concurrency, security and migration groups against local PostgreSQL + Redis, 100 two-worker starts, one summary table (~10 min)
	$(UV) run --frozen python scripts/verify.py

check: lint type imports bandit deploy-check ## Lint, format check, mypy strict, import layers, bandit and deploy/ validation

lint: $(SYNC) ## ruff lint and format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

type: $(SYNC) ## mypy strict
	$(UV) run --frozen mypy libs/servicekit/src services/user_service/src services/notification_service/src libs/servicekit/tests services/user_service/tests services/notification_service/tests tests scripts bench

imports: $(SYNC) ## import-linter: layers point one way
	$(UV) run --frozen lint-imports

pre-commit: $(SYNC) ## Install the git hook: ruff, format check, mypy strict and import layers on each commit
	$(UV) run --frozen pre-commit install

bandit: $(SYNC) ## bandit security lint of the source (skips justified in pyproject [tool.bandit])
	$(UV) run --frozen bandit -c pyproject.toml -r libs/servicekit/src services/user_service/src services/notification_service/src -q

# pip-audit queries pypi.org (or osv.dev) for advisories, so it needs that network: it is not
# part of `make check`. --strict fails when any package could not be audited (never a false
# "no known vulnerabilities" offline). The lock is exported with hashes, so nothing resolves.
PIP_AUDIT := pip-audit==2.10.1
audit: $(SYNC) ## Audit every locked dependency for known vulnerabilities (pip-audit; needs pypi.org)
	@req=$$(mktemp) && trap 'rm -f "$$req"' EXIT && \
		$(UV) export --frozen --quiet --all-groups --no-emit-workspace --format requirements-txt -o "$$req" && \
		$(UV) tool run $(PIP_AUDIT) --strict --disable-pip --require-hashes --progress-spinner off -r "$$req"

deploy-check: $(SYNC) ## Validate deploy/: hadolint, image smoke run, Compose, nginx, Kubernetes, Prometheus rules
	$(UV) run --frozen bash scripts/deploy-check.sh

fmt: $(SYNC) ## Format and auto-fix
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

migrate: $(SYNC) ## Apply database migrations to DATABASE_URL (or the local SQLite file)
	$(UV) run --frozen user-service migrate
	DATABASE_URL="$${NOTIFICATION_DATABASE_URL:-}" $(UV) run --frozen notification-service migrate

docs: $(SYNC) ## Regenerate docs/configuration.md (settings) and docs/events.md (event catalog)
	$(UV) run --frozen python scripts/gen_config_docs.py
	$(UV) run --frozen python scripts/gen_events_docs.py

.PHONY: bench bench-frozen-redis
bench: $(SYNC) ## Load-test user_service vs a bare FastAPI baseline and fastapi-users (its own locked env, bench/peers/) with wrk, then the events step (needs PostgreSQL on 127.0.0.1:5432; ~7 min)
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || true; $(UV) run --frozen python bench/run.py
	$(UV) run --frozen python bench/events.py

bench-frozen-redis: $(SYNC) ## GET /users/me at c=64 while the service's own Redis is SIGSTOPped for 20 s: p99 (wrk's and the server's), lost writes (~1 min)
	$(UV) run --frozen python bench/frozen_redis.py

clean: ## Remove the virtualenv, caches and the local data folder
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache data
