#!/usr/bin/env bash
# Sets up .venv with the default embedded model and runs the default town on it: 07:00 to 10:00
# of its first day (3 game hours, long enough for the seeded news to have a chance to spread).
# SOCIETAS_HOURS changes the span; extra arguments go to `societas run` (e.g. --seed 7).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh town
# A new run directory each time: runs/town, then runs/town-2, runs/town-3...
out="${SOCIETAS_OUT:-runs/town}"
if [ -z "${SOCIETAS_OUT:-}" ]; then
  n=2
  while [ -e "$out" ]; do out="runs/town-$n"; n=$((n + 1)); done
fi
exec .venv/bin/societas run town --hours "${SOCIETAS_HOURS:-3}" --out "$out" "$@"
