#!/usr/bin/env bash
# Sets up .venv (with the tiny test model) and runs the checks: ruff, mypy, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
if [ ! -x /usr/bin/chromium ] && [ "${SOCIETAS_SKIP_BROWSER:-0}" != "1" ]; then
  bash scripts/install-browser.sh || echo "chromium unavailable: browser tests will be skipped" >&2
fi
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/pytest -q -p no:cacheprovider "$@"
