"""A run's default progress display: a bar on a terminal (or in a notebook), one line an epoch
when output goes to a file or a pipe; explicit verbosities pass through. And the callbacks of a
run as the jobs use them, through `fit_run`: early stopping with the best epoch restored, the
TensorBoard logs, the backup removed at the end."""
import io
import math
import re
import sys

import numpy as np
import pytest

import keras
import tensorflow as tf

from test_training import RecordWeights, assert_epoch_1_weights_restored, one_feature_classifier, \
    read_tensorboard_scalars
from tfdistil.training import fit_run, fit_verbosity

EPOCHS = 2
STEPS = 3  # 6 examples in batches of 2
SUMMARY_LINE = re.compile(rf"^{STEPS}/{STEPS} - ", re.MULTILINE)  # Keras' end-of-epoch line


class _Stream(io.StringIO):
    def __init__(self, terminal):
        super().__init__()
        self._terminal = terminal

    def isatty(self):
        super().isatty()  # ValueError once closed, as a real stream
        return self._terminal


@pytest.fixture
def no_notebook(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)


def test_auto_is_a_bar_on_a_terminal_and_one_line_an_epoch_otherwise(no_notebook):
    assert fit_verbosity("auto", stream=_Stream(terminal=True)) == 1
    assert fit_verbosity("auto", stream=_Stream(terminal=False)) == 2
    assert fit_verbosity(stream=object()) == 2  # no isatty at all: not a terminal
    closed = _Stream(terminal=True)
    closed.close()
    assert fit_verbosity("auto", stream=closed) == 2


def test_auto_is_a_bar_in_a_notebook(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", sys.modules[__name__])
    assert fit_verbosity("auto", stream=_Stream(terminal=False)) == 1


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_explicit_verbosity_passes_through(verbose, no_notebook):
    assert fit_verbosity(verbose, stream=_Stream(terminal=True)) == verbose
    assert fit_verbosity(verbose, stream=_Stream(terminal=False)) == verbose


@pytest.mark.parametrize("bad", [3, -1, "bar", True, None])
def test_bad_verbosity_names_the_value(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        fit_verbosity(bad)


def _train(tmp_path, **kwargs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.arange(18, dtype="float32").reshape(6, 3) / 18
    data = tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).batch(2)
    return fit_run(model, data, None, epochs=EPOCHS, run_dir=str(tmp_path), name="m", **kwargs)


def test_fit_run_default_prints_one_line_an_epoch_to_a_file_or_pipe(tmp_path, monkeypatch, no_notebook):
    out = _Stream(terminal=False)
    monkeypatch.setattr(sys, "stdout", out)
    _train(tmp_path)
    text = out.getvalue()
    assert len(SUMMARY_LINE.findall(text)) == EPOCHS, text
    assert "\r" not in text and "\b" not in text and "━" not in text  # no bar redraws in a log


def test_fit_run_default_draws_a_bar_on_a_terminal(tmp_path, monkeypatch, no_notebook):
    out = _Stream(terminal=True)
    monkeypatch.setattr(sys, "stdout", out)
    _train(tmp_path)
    text = out.getvalue()
    assert "━" in text and "\r" in text, text
    assert f"Epoch {EPOCHS}/{EPOCHS}" in text


def test_fit_run_verbose_0_is_silent(tmp_path, monkeypatch, no_notebook):
    out = _Stream(terminal=True)
    monkeypatch.setattr(sys, "stdout", out)
    _train(tmp_path, verbose=0)
    assert out.getvalue() == ""


# ----- the callbacks as the jobs run them: fit_run (fit_model's path), not Keras' own -----------


def test_fit_run_early_stopping_stops_and_restores_the_best_epoch_by_hand(tmp_path):
    """The jobs' early stopping (fit_run's patience, as fit_model passes it). A 1-feature, 2-class
    model: kernel [[1, 0]] (logit_0 = x + b0, logit_1 = b1) predicts 1 iff d = b1 - b0 > x.
    Training on x = 0, y = 1 leaves the kernel alone and raises d with SGD(lr=1):
    d <- d + 2 (1 - sigmoid(d)): 1.0 after epoch 1, 1.538 after epoch 2, 1.96 after epoch 3.
    Validation (x=-1, y=1), (x=1.25, y=0) is all right at d=1 and half wrong from d=1.538 on:
    val_accuracy 1.0, 0.5, 0.5, so patience 2 stops after epoch 3 (not 2, not 10) and gives back
    the epoch-1 weights, bias (-0.5, 0.5) by hand."""
    model = one_feature_classifier()
    record = RecordWeights()
    train = tf.data.Dataset.from_tensor_slices((np.zeros((1, 1), "float32"), np.ones(1, "int32"))).batch(1)
    dev = tf.data.Dataset.from_tensor_slices((np.array([[-1.0], [1.25]], "float32"),
                                              np.array([1, 0], "int32"))).batch(2)
    history = fit_run(model, train, dev, epochs=10, run_dir=str(tmp_path), name="es", patience=2,
                      monitor="val_accuracy", mode="max", verbose=0, callbacks=[record])

    assert history.history["val_accuracy"] == [1.0, 0.5, 0.5]
    assert_epoch_1_weights_restored(model, record)
    d2 = 1.0 + 2 * (1 - 1 / (1 + math.exp(-1.0)))
    d3 = d2 + 2 * (1 - 1 / (1 + math.exp(-d2)))
    np.testing.assert_allclose(record.at_epoch_end[2][1], [-d3 / 2, d3 / 2], rtol=1e-5)
    assert not (tmp_path / "backup" / "es").exists()  # a finished run keeps no backup


def test_fit_run_writes_tensorboard_logs_of_every_epoch(tmp_path):
    """The TensorBoard callback fit_run adds: one train and one validation point an epoch, at
    steps 0, 1, ... of the run's epochs (fit_run calls fit once an epoch), holding the history."""
    x = np.arange(18, dtype="float32").reshape(6, 3) / 18
    dev = tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).batch(3)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    data = tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).batch(2)
    history = fit_run(model, data, dev, epochs=3, run_dir=str(tmp_path), name="tb", verbose=0)
    train = read_tensorboard_scalars(tmp_path / "logs" / "tb" / "train")
    val = read_tensorboard_scalars(tmp_path / "logs" / "tb" / "validation")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1, 2]
    assert [step for step, _ in val["epoch_loss"]] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in val["epoch_loss"]], history.history["val_loss"], rtol=1e-6)
