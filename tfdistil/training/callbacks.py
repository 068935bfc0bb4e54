"""The callbacks every run gets: TensorBoard, resumable backups, best-model checkpoints."""
import os

import keras


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
