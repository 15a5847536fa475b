#!/usr/bin/env bash
# Run a command in the project's locked environment (uv.lock): the pre-commit hooks' entry, so
# each hook uses the ruff, mypy and import-linter versions the lock pins.
#
#   scripts/uv-run.sh ruff check      ->  uv run --frozen ruff check
#
# uv is found as the Makefile finds it (uv on PATH, else the pip-installed `python3 -m uv`),
# after the uv that started us: under `uv run pre-commit ...` the `python3` on PATH is the
# project's virtualenv, which has no uv module, and uv run exports its own path as $UV.
set -euo pipefail
if [[ -n "${UV:-}" ]]; then
    exec "$UV" run --frozen "$@"
elif command -v uv >/dev/null 2>&1; then
    exec uv run --frozen "$@"
else
    exec python3 -m uv run --frozen "$@"
fi
