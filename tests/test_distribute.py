"""`tf.distribute`: one epoch of distillation under `MirroredStrategy` (two logical CPU
devices) and under `MultiWorkerMirroredStrategy` (two worker processes on 127.0.0.1)
gives the student weights and the reported losses of single-device training on the
same global batches.

Every hand-written loss term divides by a count taken over the *global* batch, so the
replicas' summed gradients are the single-device gradients. The data make this
matter: in every global batch the half that goes to replica 0 holds short sequences
and the other half long ones, so a per-replica ("local") mean would weigh tokens
differently (see `test_replica_halves_have_different_token_counts`). Both a
sequence-level (TextClassifier) and a token-level (TokenClassifier, padding and -100
labels) student are trained, with the hidden-state cosine and attention KL terms on.

Each set-up runs in its own process (`tests/distribute_worker.py`): logical devices and
TF_CONFIG must be set before TensorFlow initialises. All processes start together
(module fixture) and each test waits for the ones it needs.
"""
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("distribute_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 300  # seconds for all runs together; they take ~30 s on 2 idle cores
WEIGHT_ATOL = 1e-5
LOSS_RTOL = 1e-5


def _load_worker_module():
    # The worker's top level imports numpy only: sharing its data here costs no TF start.
    spec = importlib.util.spec_from_file_location("distribute_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dw = _load_worker_module()


# ----- processes -------------------------------------------------------------------------
def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class _Run:
    """One worker process; its stdout and stderr go to a log file in the work dir."""

    def __init__(self, name, mode, workdir, tf_config=None):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        env = dict(os.environ)
        env.pop("TF_CONFIG", None)
        env.update(
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
            KERAS_BACKEND="tensorflow",
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        )
        if tf_config is not None:
            env["TF_CONFIG"] = json.dumps(tf_config)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), mode, str(workdir)],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(workdir),
            )

    def log_text(self, tail=12000):
        text = self.log_path.read_text(errors="replace")
        return text[-tail:]

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class _Runs:
    def __init__(self, workdir):
        self.workdir = workdir
        self.deadline = time.monotonic() + TIMEOUT
        ports = _free_ports(2)
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        self.by_mode = {
            "single": [_Run("single", "single", workdir)],
            "mirrored": [_Run("mirrored", "mirrored", workdir)],
            "multi_worker": [
                _Run(f"multi_worker_{i}", "multi_worker", workdir,
                     {"cluster": cluster, "task": {"type": "worker", "index": i}})
                for i in range(2)
            ],
        }

    def wait(self, *modes):
        """Waits for every process of `modes`. As soon as one fails (a multi-worker peer
        would then block forever), or at the deadline, kills the others and fails with
        every log."""
        runs = [run for mode in modes for run in self.by_mode[mode]]
        while True:
            failed = [run for run in runs if run.process.poll() not in (None, 0)]
            running = [run for run in runs if run.process.poll() is None]
            if failed or not running or time.monotonic() > self.deadline:
                break
            time.sleep(0.2)
        if failed or running:
            problems = [f"{run.name} exited with code {run.process.returncode}" for run in failed]
            if not failed:
                problems = [f"{run.name} still running after {TIMEOUT} s (killed)" for run in running]
            for run in runs:
                run.kill()
            logs = "\n".join(f"----- {run.name} log -----\n{run.log_text()}" for run in runs)
            pytest.fail("; ".join(problems) + "\n" + logs, pytrace=False)

    def kill_all(self):
        for runs in self.by_mode.values():
            for run in runs:
                run.kill()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    started = _Runs(tmp_path_factory.mktemp("distribute"))
    yield started
    started.kill_all()


# ----- checks ----------------------------------------------------------------------------
def _load(path):
    with np.load(path) as f:
        return dict(f)


def _check_split(workdir, mode, case, num_workers, replicas_per_worker):
    """Replica r (over all workers) got examples [r*b, (r+1)*b) of every global batch,
    b = GLOBAL_BATCH / replicas: the global batches are the single device's."""
    x, _ = dw.make_data(case)
    index = {row.tobytes(): i for i, row in enumerate(x["token_ids"])}
    assert len(index) == dw.NUM_EXAMPLES, "example rows must be unique to trace them"
    num_replicas = num_workers * replicas_per_worker
    per_replica = dw.GLOBAL_BATCH // num_replicas
    steps = dw.NUM_EXAMPLES // dw.GLOBAL_BATCH
    for worker in range(num_workers):
        seen = _load(workdir / f"split_{mode}_{case}_w{worker}.npz")
        assert len(seen) == steps * replicas_per_worker, sorted(seen)
        for step in range(steps):
            for local in range(replicas_per_worker):
                replica = worker * replicas_per_worker + local
                got = [index[row.tobytes()] for row in seen[f"step{step}_replica{local}"]]
                start = step * dw.GLOBAL_BATCH + replica * per_replica
                assert got == list(range(start, start + per_replica)), (
                    f"{mode}/{case}: worker {worker} replica {local} at step {step} got examples "
                    f"{got}, expected {list(range(start, start + per_replica))}"
                )


def _compare_with_single(workdir, mode, case):
    ref = _load(workdir / f"result_single_{case}.npz")
    got = _load(workdir / f"result_{mode}_{case}.npz")
    assert int(got["num_replicas"]) == 2 and int(ref["num_replicas"]) == 1

    # Same start: teacher and student initial weights identical, bit for bit.
    initial_keys = [k for k in ref if k.startswith("initial_")]
    assert initial_keys and sorted(initial_keys) == sorted(k for k in got if k.startswith("initial_"))
    for key in initial_keys:
        np.testing.assert_array_equal(got[key], ref[key], err_msg=f"{mode}/{case}: {key} differs")

    paths = list(ref["weight_paths"])
    assert list(got["weight_paths"]) == paths
    diffs = {p: float(np.max(np.abs(got[f"weight_{i}"] - ref[f"weight_{i}"]))) for i, p in enumerate(paths)}
    moved = max(
        float(np.max(np.abs(ref[f"weight_{i}"] - ref[f"initial_student_{i}"]))) for i in range(len(paths))
    )
    # The epoch must move the weights far more than the tolerance, or agreement means nothing.
    assert moved > 1000 * WEIGHT_ATOL, f"{case}: training moved the student weights by only {moved:.2e}"
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] <= WEIGHT_ATOL, (
        f"{mode}/{case}: student weights differ from single-device training by up to "
        f"{diffs[worst]:.3e} ({worst}); all: "
        + ", ".join(f"{p}={d:.1e}" for p, d in diffs.items() if d > WEIGHT_ATOL)
    )

    # The reported per-epoch losses (every tracker) are the single device's.
    names = sorted(k for k in ref if k.startswith("history_"))
    assert names == sorted(k for k in got if k.startswith("history_"))
    assert {"history_loss", "history_hard_loss", "history_soft_loss",
            "history_hidden_cosine_loss", "history_attention_loss"} <= set(names)
    loss_rel = {}
    for name in names:
        assert got[name].shape == ref[name].shape == (1,)
        loss_rel[name] = float(np.max(np.abs(got[name] - ref[name]) / np.abs(ref[name])))
        assert loss_rel[name] <= LOSS_RTOL, (
            f"{mode}/{case}: reported {name[len('history_'):]} {got[name]} vs single-device {ref[name]}"
        )
    print(
        f"{mode}/{case}: max |weight diff| {diffs[worst]:.2e} (weights moved up to {moved:.2e}); "
        f"max relative loss diff {max(loss_rel.values()):.2e}"
    )


# ----- tests -----------------------------------------------------------------------------
@pytest.mark.parametrize("case", dw.CASES)
def test_replica_halves_have_different_token_counts(case):
    """Negative control, on the data alone: with a per-replica (local) mean, replica r's
    tokens would weigh 1 / (replicas * n_r) in the summed gradient instead of 1 / N
    (N = tokens of the global batch). The halves differ enough that this would move
    the weights far beyond the tolerance, so the weight comparison is sensitive to the
    denominator."""
    x, y = dw.make_data(case)
    half = dw.GLOBAL_BATCH // 2
    mask = x["padding_mask"].astype(bool)
    counted = {"real tokens (hidden/attention terms)": mask}
    if case == "token":
        counted["labelled tokens (hard/soft terms)"] = mask & (y != dw.IGNORE)
    for what, m in counted.items():
        for start in range(0, dw.NUM_EXAMPLES, dw.GLOBAL_BATCH):
            n = [int(m[start:start + half].sum()), int(m[start + half:start + dw.GLOBAL_BATCH].sum())]
            global_weight = 1.0 / sum(n)
            local_weights = [1.0 / (2 * n_r) for n_r in n]
            assert all(abs(w / global_weight - 1.0) > 0.2 for w in local_weights), (
                f"{case}: {what} of batch at {start} split {n}: a local mean would be too close "
                "to the global one for the test to tell them apart"
            )
    if case == "token":
        # Padding positions carrying a real class must not count either.
        assert np.any((~mask) & (y != dw.IGNORE))


def test_mirrored_strategy_matches_single_device(runs):
    runs.wait("single", "mirrored")
    for case in dw.CASES:
        _check_split(runs.workdir, "single", case, num_workers=1, replicas_per_worker=1)
        _check_split(runs.workdir, "mirrored", case, num_workers=1, replicas_per_worker=2)
        _compare_with_single(runs.workdir, "mirrored", case)


def test_multi_worker_mirrored_strategy_matches_single_device(runs):
    runs.wait("single", "multi_worker")
    for case in dw.CASES:
        _check_split(runs.workdir, "multi_worker", case, num_workers=2, replicas_per_worker=1)
        _compare_with_single(runs.workdir, "multi_worker", case)
