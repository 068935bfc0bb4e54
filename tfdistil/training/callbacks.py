"""The callbacks every run gets: TensorBoard, resumable backups, best-model checkpoints; and the
default progress display of a run."""
import os
import sys

import keras

VERBOSITIES = ("auto", 0, 1, 2)


def fit_verbosity(verbose="auto", stream=None):
    """Keras' fit verbosity for `verbose`: 0 silent, 1 progress bar, 2 one line an epoch; "auto"
    gives the bar on a terminal or in a notebook, and one line an epoch when output goes to a
    file or a pipe (the bar's redraws would fill a log). `stream` (default stdout, where Keras
    prints) is what is tested for a terminal."""
    if verbose not in VERBOSITIES or isinstance(verbose, bool):
        raise ValueError(f"verbose must be one of {VERBOSITIES}, got {verbose!r}")
    if verbose != "auto":
        return verbose
    stream = sys.stdout if stream is None else stream
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        terminal = False
    return 1 if terminal or "ipykernel" in sys.modules else 2


def run_callbacks(run_dir, name, monitor="val_accuracy", mode="max", patience=None, backup=True):
    """TensorBoard logs in `run_dir/logs/<name>`, `BackupAndRestore` in
    `run_dir/backup/<name>` (saved every epoch: a killed run resumes after its last
    completed epoch), and with `patience` early stopping on `monitor` with the best
    weights restored."""
    callbacks = [
        keras.callbacks.TensorBoard(
            log_dir=os.path.join(run_dir, "logs", name), update_freq="epoch", write_graph=False
        )
    ]
    if backup:
        callbacks.append(
            keras.callbacks.BackupAndRestore(
                os.path.join(run_dir, "backup", name), save_freq="epoch", delete_checkpoint=True
            )
        )
    if patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True)
        )
    return callbacks
