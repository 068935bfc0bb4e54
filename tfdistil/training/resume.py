"""`fit_resumable`: `model.fit` that a killed process picks up where it stopped, mid-epoch.

Keras' `BackupAndRestore` resumes at the start of the epoch, so a run killed late in an epoch
trains it again. Here every `save_every` batches the weights, optimizer, history, early-stopping
state, the epoch's metric states and position go to `backup_dir`; a new call skips the finished
batches, exactly when the epoch's order is reproducible (unshuffled data, or a `tfdistil.data`
dataset shuffled by an `epoch` variable, which this sets). Each epoch is one
`model.fit(initial_epoch=e, epochs=e + 1)`.
"""
import json
import os
import shutil
import tempfile
import warnings

import keras
import numpy as np

STATE_FILE = "state.json"
WEIGHTS_FILE = "latest.weights.h5"
BEST_FILE = "best.weights.h5"


class _Progbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, told the run's epoch count rather than this call's."""

    def __init__(self, total_epochs):
        super().__init__()
        self._total_epochs = total_epochs

    def set_params(self, params):
        super().set_params(dict(params, epochs=self._total_epochs))


class _Backup(keras.callbacks.Callback):
    """Saves the state every `every` batches of one epoch (batch numbers offset by `skipped`)."""

    def __init__(self, save, epoch, skipped, every):
        super().__init__()
        self._save, self._epoch, self._skipped, self._every = save, epoch, skipped, every

    def on_train_batch_end(self, batch, logs=None):
        done = self._skipped + batch + 1
        if self._every and done % self._every == 0:
            self._save(self._epoch, done)


class _ResumeMetrics(keras.callbacks.Callback):
    """Adds the metric states saved mid-epoch to the resumed epoch's, so that its logged loss and
    metrics cover the batches before the interruption too.

    Keras builds the compiled metrics while tracing the first step, so the states are added after
    it, to what that step left: exact for metrics that keep sums starting at zero (totals, counts,
    confusion counts), as Keras' means, accuracies, precision/recall and F-scores do."""

    def __init__(self, values):
        super().__init__()
        self._values = values

    def on_train_batch_end(self, batch, logs=None):
        if self._values is None:
            return
        values, self._values = self._values, None
        variables = self.model.metrics_variables
        if [np.shape(v) for v in values] != [tuple(v.shape) for v in variables]:
            warnings.warn("the resumed model's metrics differ from the interrupted run's: the resumed epoch's "
                          "logged loss and metrics cover only the batches after the resume", stacklevel=2)
            return
        for variable, value in zip(variables, values):
            variable.assign_add(np.asarray(value, dtype=variable.dtype))
        if logs is not None:  # the dict the later callbacks (progress bar) get
            logs.update(self.model.get_metrics_result())


def _atomic_json(path, value):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(value, f)
    os.replace(tmp, path)


def _atomic_weights(model, path):
    tmp = path[: -len(".weights.h5")] + ".tmp.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)


def read_backup(backup_dir):
    """The saved state of an interrupted `fit_resumable` (dict with `epoch`, `batch`,
    `history`, ...) or None."""
    path = os.path.join(backup_dir, STATE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _seed_states(model):
    """The dropout layers' random-number states: `save_weights` leaves them out, and without
    them a resumed run would draw other dropout masks than the run it continues."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def _improved(value, best, mode):
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def fit_resumable(model, train_data, *, epochs, backup_dir, validation_data=None, callbacks=(),
                  epoch_variable=None, save_every=100, monitor="val_accuracy", mode="max", patience=None,
                  verbose="auto"):
    """Train like `model.fit(train_data, validation_data=..., epochs=...)`, resumably.

    Args:
        model: a compiled Keras model (or `Distiller`).
        train_data: a tf.data dataset of training batches (one pass = one epoch).
        epochs: total epochs of the run (also when resuming).
        backup_dir: where the state lives while the run is unfinished; removed at the end.
        validation_data: evaluated after each epoch (needed for early stopping).
        callbacks: more Keras callbacks (TensorBoard, ...).
        epoch_variable: the `epoch` tf.Variable the dataset was shuffled with (see
            `make_classification_dataset`); set to each epoch's number before it starts, so
            that a resumed epoch replays the same order and skips exactly the done batches.
        save_every: batches between saves inside an epoch (0: only at epoch ends).
        monitor, mode, patience: early stopping on `monitor` ("max" or "min") after `patience`
            epochs without improvement, with the best epoch's weights restored at the end
            (None: no early stopping). Its state is saved too, and so are the metric states of
            the epoch in progress: a resumed epoch logs the loss and metrics of all its batches.
        verbose: Keras' fit verbosity, or "auto" (see `fit_verbosity`): a progress bar on a
            terminal, one line an epoch otherwise.

    Returns:
        A `keras.callbacks.History` whose `history` holds every epoch of the run, the
        epochs before an interruption included.
    """
    from tfdistil.training.callbacks import fit_verbosity

    verbose = fit_verbosity(verbose)
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    if save_every < 0:
        raise ValueError(f"save_every must be >= 0, got {save_every}")
    os.makedirs(backup_dir, exist_ok=True)
    state = read_backup(backup_dir) or {"epoch": 0, "batch": 0, "history": {}, "best": None, "wait": 0,
                                        "best_epoch": None, "stopped": False}
    # The interrupted epoch's metric states and logs; the epoch-end saves leave them out.
    metric_states, train_logs = state.pop("metric_states", None), state.pop("train_logs", None)
    if state["epoch"] or state["batch"]:
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(backup_dir, WEIGHTS_FILE))
        for variable, value in zip(_seed_states(model), state.get("seed_states", [])):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        if verbose:
            print(f"[tfdistil] resuming from {backup_dir}: epoch {state['epoch'] + 1}, "
                  f"{state['batch']} batches already done")

    def save(epoch, batch):
        _atomic_weights(model, os.path.join(backup_dir, WEIGHTS_FILE))
        saved = dict(state, epoch=epoch, batch=batch, seed_states=[np.asarray(v.numpy()).tolist()
                                                                   for v in _seed_states(model)])
        if batch:
            saved.update(metric_states=[np.asarray(v.numpy()).tolist() for v in model.metrics_variables],
                         train_logs={key: float(value) for key, value in model.get_metrics_result().items()})
        _atomic_json(os.path.join(backup_dir, STATE_FILE), saved)

    history = state["history"]
    epoch = state["epoch"]
    while epoch < epochs and not state["stopped"]:
        skip = state["batch"]
        if epoch_variable is not None:
            epoch_variable.assign(epoch)
        data = train_data.skip(skip) if skip else train_data
        # The saved metric states are added before any other callback (a save, the progress bar) sees them.
        first = [_ResumeMetrics(metric_states)] if skip and metric_states is not None else []
        extra = [_Backup(save, epoch, skip, save_every)]
        if verbose:
            extra.append(_Progbar(epochs))
        with warnings.catch_warnings():
            if skip:  # all the epoch's batches were done before the kill: none left is expected
                warnings.filterwarnings("ignore", message="Your input ran out of data")
            h = model.fit(data, validation_data=validation_data, initial_epoch=epoch, epochs=epoch + 1,
                          verbose=verbose, shuffle=False, callbacks=[*first, *callbacks, *extra])
        logs = dict(h.history)
        if skip and train_logs:
            # Killed after the epoch's last batch (in validation): no batch left to train, and
            # fit logs no training loss or metrics; those of the batches before the kill stand.
            logs = {**{key: [value] for key, value in train_logs.items() if key not in logs}, **logs}
        metric_states = train_logs = None
        for key, values in logs.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        if patience is not None:
            if monitor not in logs:
                raise ValueError(f"early stopping monitors {monitor!r}, which fit does not log: "
                                 f"{sorted(logs)}")
            value = float(logs[monitor][-1])
            if _improved(value, state["best"], mode):
                state.update(best=value, wait=0, best_epoch=epoch)
                _atomic_weights(model, os.path.join(backup_dir, BEST_FILE))
            else:
                state["wait"] += 1
                if state["wait"] >= patience:
                    state["stopped"] = True
        if getattr(model, "stop_training", False):
            state["stopped"] = True
        epoch += 1
        state.update(history=history, batch=0)
        save(epoch, 0)
    if patience is not None and state["best_epoch"] is not None and state["best_epoch"] != epoch - 1:
        model.load_weights(os.path.join(backup_dir, BEST_FILE))
        if verbose:
            print(f"[tfdistil] early stopping: best {monitor} {state['best']:.4f} at epoch "
                  f"{state['best_epoch'] + 1}; its weights restored")
    shutil.rmtree(backup_dir, ignore_errors=True)
    result = keras.callbacks.History()
    result.history = {k: list(np.asarray(v, dtype=float)) for k, v in history.items()}
    result.epoch = list(range(len(next(iter(history.values()), []))))
    return result


def fit_run(model, train_data, validation_data, *, epochs, run_dir, name, patience=None, monitor="val_accuracy",
            mode="max", epoch_variable=None, save_every=100, verbose="auto", callbacks=()):
    """`fit_resumable` for a model of a run: TensorBoard logs in `run_dir/logs/<name>`, backups
    in `run_dir/backup/<name>` (removed once finished). `callbacks` run before TensorBoard, so the
    logs they add (a task's dev metrics) are written too."""
    from tfdistil.training.callbacks import run_callbacks

    return fit_resumable(
        model, train_data, epochs=epochs, backup_dir=os.path.join(run_dir, "backup", name),
        validation_data=validation_data, callbacks=[*callbacks, *run_callbacks(run_dir, name, backup=False)],
        epoch_variable=epoch_variable, save_every=save_every, monitor=monitor, mode=mode, patience=patience,
        verbose=verbose,
    )
