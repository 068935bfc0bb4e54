"""The TensorBoard logs a run writes are readable by a real TensorBoard server.

Fits a tiny Keras model for 2 epochs with `run_callbacks`, serves `<tmp>/logs` with the venv's
`tensorboard` on 127.0.0.1 and reads the epoch scalars back over its HTTP API (the same JSON
the dashboard's scalars page fetches).
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import keras

from tfdistil.training import run_callbacks

STARTUP_TIMEOUT_S = 60.0
RUN = "m/train"


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(base, path, **query):
    url = base + path + ("?" + urllib.parse.urlencode(query) if query else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode("utf-8"))


def _write_logs(run_dir):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, validation_data=(x, y), epochs=2, batch_size=16, verbose=0,
              callbacks=run_callbacks(str(run_dir), "m"))


def _tensorboard_binary():
    path = Path(sys.executable).parent / "tensorboard"
    # tensorboard is a runtime dependency: its missing executable is a failure, not a skip.
    assert path.is_file(), f"no tensorboard executable next to {sys.executable}"
    return str(path)


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_tensorboard_serves_epoch_scalars(tmp_path):
    _write_logs(tmp_path)
    logdir = tmp_path / "logs"
    assert (logdir / "m" / "train").is_dir(), sorted(p.name for p in logdir.rglob("*"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    stderr_path = tmp_path / "tensorboard.stderr"
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            [_tensorboard_binary(), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port),
             "--reload_interval", "1"],
            stdout=subprocess.DEVNULL, stderr=stderr, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        )
    try:
        # Poll until the server answers and has loaded the run's scalars (it reads the logdir
        # in the background after starting to listen), for at most STARTUP_TIMEOUT_S.
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        tags, last_error = None, None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                tags = _get_json(base, "/data/plugin/scalars/tags")
                if {"epoch_loss", "epoch_accuracy"} <= set(tags.get(RUN, {})):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as error:
                last_error = error
            time.sleep(0.5)
        else:
            tags = tags  # timed out: reported below
        if tags is None or not {"epoch_loss", "epoch_accuracy"} <= set(tags.get(RUN, {})):
            pytest.fail(
                f"TensorBoard did not serve {RUN}'s epoch scalars within {STARTUP_TIMEOUT_S:.0f} s "
                f"(exit code {process.poll()}, last tags {tags}, last error {last_error!r}); stderr:\n"
                + stderr_path.read_text(errors="replace")[-4000:]
            )

        runs = _get_json(base, "/data/runs")
        assert RUN in runs and "m/validation" in runs, runs
        plugins = _get_json(base, "/data/plugins_listing")
        assert plugins["scalars"]["enabled"], plugins["scalars"]
        assert {"epoch_loss", "epoch_accuracy"} <= set(tags["m/validation"]), tags

        for tag in ("epoch_loss", "epoch_accuracy"):
            points = _get_json(base, "/data/plugin/scalars/scalars", run=RUN, tag=tag)
            # [[wall_time, step, value], ...], one point per epoch
            assert [step for _, step, _ in points] == [0, 1], points
            values = [value for _, _, value in points]
            assert all(np.isfinite(values)), points
            if tag == "epoch_accuracy":
                assert all(0.0 <= v <= 1.0 for v in values), points
            else:
                assert all(v > 0.0 for v in values), points
    finally:
        _stop(process)
