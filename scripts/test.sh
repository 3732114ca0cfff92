#!/usr/bin/env bash
# Sets up .venv (with the tiny test model) and runs the checks: ruff, mypy, then the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh test
if [ ! -x /usr/bin/chromium ] && [ "${SOCIETAS_SKIP_BROWSER:-0}" != "1" ]; then
  if ! bash scripts/install-browser.sh; then
    echo "error: chromium could not be installed, so the viewer's browser tests cannot run;" >&2
    echo "set SOCIETAS_SKIP_BROWSER=1 to run the other checks without them" >&2
    exit 1
  fi
fi
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy
.venv/bin/pytest -q -p no:cacheprovider "$@"
