"""`kill -9` during training and during export, at seeded points in time (issue 28).

A driver process runs what a user runs, `tfdistil finetune` then `tfdistil export` (in-process
calls of the CLI's `main`), and prints a line, flushed, as each phase starts and ends. An
uninterrupted run gives the reference result and each phase's duration; the interrupted runs
are killed with SIGKILL at a seeded fraction of that duration after the phase's start line, as
`kill -9` or the OOM killer would. Afterwards:

- the model folder holds only integer version folders, each complete (it loads and serves);
  a killed export's staging folder is never inside it, so TF Serving's version scan cannot see it;
- running the same commands again (the user's rerun: finetune resumes from its backup, export
  starts over and removes the dead export's staging folder) ends with the weights and served
  outputs of the uninterrupted run, bit for bit.
"""
import csv
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the export's ops)

from tfdistil.data import load_sentiment_dataset
from tfdistil.jobs.runs import load_run_model

SEED = 2026  # the kill points; change it to try others
TEXTS = ["a good film", "dull and bad", "", "the best film of the year"]

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from tfdistil.cli import main

    train, run_dir, out = sys.argv[1:4]
    def say(what):
        print(f"@@ {what} {time.monotonic():.3f}", flush=True)

    if not os.path.exists(os.path.join(run_dir, "report.json")):  # the finetune step did not finish
        say("finetune start")
        code = main(["finetune", "--train", train, "--dev", train, "--preset", "bert_tiny", "--num-layers", "1",
                     "--vocabulary-size", "150", "--sequence-length", "16", "--epochs", "3", "--batch-size", "8",
                     "--precision", "float32", "--verbose", "2", "--runs-dir", os.path.dirname(run_dir),
                     "--name", os.path.basename(run_dir)])
        assert code == 0, code
        say("finetune end")
    if not os.path.isdir(os.path.join(out, "fault", "1")):
        say("export start")
        assert main(["export", "--run", run_dir, "--out", out, "--name", "fault"]) == 0
        say("export end")
    say("done")
    """
)


class Driver:
    """The driver in a subprocess; its `@@ <phase> <time>` lines, as they arrive."""

    def __init__(self, work):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(work / "train.csv"), str(work / "runs" / "fault"), str(work / "out")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=work)
        self.events, self.output = {}, []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.process.stdout:
            self.output.append(line)
            match = re.fullmatch(r"@@ (\w+ \w+) ([0-9.]+)\n", line)
            if match:
                self.events[match[1]] = (float(match[2]), time.monotonic())

    def wait(self, timeout=300):
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        assert code == 0, "".join(self.output[-40:])
        return self

    def duration(self, phase):
        return self.events[f"{phase} end"][0] - self.events[f"{phase} start"][0]

    def kill_during(self, phase, after, timeout=300):
        """SIGKILL `after` seconds after the phase's start line (at once if it ended before)."""
        deadline = time.monotonic() + timeout
        while f"{phase} start" not in self.events:
            assert self.process.poll() is None, "".join(self.output[-40:])
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(max(0.0, self.events[f"{phase} start"][1] + after - time.monotonic()))
        finished = self.process.poll() is not None or f"{phase} end" in self.events
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return not finished


def write_data(work):
    data = load_sentiment_dataset("train")
    with open(work / "train.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((t, data.label_names[y]) for t, y in zip(data.texts[:64], data.labels[:64]))


def served(version):
    outputs = tf.saved_model.load(str(version)).signatures["serving_default"](text=tf.constant(TEXTS))
    return outputs["probabilities"].numpy()


def assert_only_complete_versions(model_folder):
    """What TF Serving's scan of the model folder finds: integer folders only, each loads."""
    if not model_folder.exists():
        return []
    entries = sorted(p.name for p in model_folder.iterdir())
    assert all(re.fullmatch(r"[0-9]+", name) for name in entries), entries
    for name in entries:
        assert served(model_folder / name).shape == (len(TEXTS), 2)
    return entries


def weights(run):
    return load_run_model(run / "runs" / "fault")[1].get_weights()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work = tmp_path_factory.mktemp("reference")
    write_data(work)
    driver = Driver(work).wait()
    return work, driver.duration("finetune"), driver.duration("export")


def test_kill_9_during_training_and_export_then_rerun(reference, tmp_path):
    ref_work, train_seconds, export_seconds = reference
    rng = np.random.default_rng(SEED)
    write_data(tmp_path)
    model_folder = tmp_path / "out" / "fault"

    # Killed while training.
    killed_training = Driver(tmp_path).kill_during("finetune", rng.uniform(0.1, 0.6) * train_seconds)
    assert not (tmp_path / "runs" / "fault" / "report.json").exists() or not killed_training
    assert assert_only_complete_versions(model_folder) == []

    # The rerun resumes training, then is killed while exporting.
    killed_export = Driver(tmp_path).kill_during("export", rng.uniform(0.1, 0.5) * export_seconds)
    assert killed_training or killed_export, "both kills landed after their phase: no fault was injected"
    print(f"killed mid-training: {killed_training}, mid-export: {killed_export}")
    versions = assert_only_complete_versions(model_folder)
    assert versions in ([], ["1"])
    staging = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".fault-v")]
    assert (versions == [] and killed_export) == bool(staging), (versions, staging)

    # The last rerun exports; the dead export's staging folder is gone.
    Driver(tmp_path).wait()
    assert assert_only_complete_versions(model_folder) == ["1"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["fault"]
    assert not (tmp_path / "runs" / "fault" / "backup").exists()

    # The same result as the run that was never killed.
    for got, expected in zip(weights(tmp_path), weights(ref_work)):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(served(model_folder / "1"), served(ref_work / "out" / "fault" / "1"))
