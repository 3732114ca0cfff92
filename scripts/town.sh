#!/usr/bin/env bash
# Sets up .venv with the default embedded model and runs the default town on it.
# Extra arguments go to `societas run` (e.g. --hours 4 --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh town
.venv/bin/societas models --check --only qwen2.5-coder-1.5b
exec .venv/bin/societas run town --hours "${SOCIETAS_HOURS:-1}" --out "${SOCIETAS_OUT:-runs/town}" "$@"
