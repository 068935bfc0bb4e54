"""A run's default progress display: a bar on a terminal (or in a notebook), one line an epoch
when output goes to a file or a pipe; explicit verbosities pass through."""
import io
import re
import sys

import numpy as np
import pytest

import keras
import tensorflow as tf

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
