"""`fit_resumable`: a run killed mid-epoch resumes at the batch where it stopped and ends with
the weights, history and early-stopping decisions of the run that was never killed; the
epoch-seeded shuffle it relies on.

The reference is the same script run without a kill, in its own process: nothing here is
an output of the resumed run compared with itself."""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfdistil.data import load_sentiment_dataset, make_classification_dataset
from tfdistil.models import BertBackbone, TextClassifier
from tfdistil.text import WordPieceTokenizer, learn_vocabulary
from tfdistil.training import fit_resumable

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import keras
    import tensorflow as tf
    from tfdistil.data import load_sentiment_dataset, make_classification_dataset
    from tfdistil.models import BertBackbone, TextClassifier
    from tfdistil.text import WordPieceTokenizer, learn_vocabulary
    from tfdistil.training import fit_resumable, make_optimizer

    run_dir, kill_epoch, kill_batch, patience = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    patience = None if patience == "none" else int(patience)
    keras.utils.set_random_seed(0)
    import dataclasses
    data = load_sentiment_dataset("train")
    data = dataclasses.replace(data, texts=data.texts[:96], labels=data.labels[:96])
    tokenizer = WordPieceTokenizer(learn_vocabulary(data.texts, 200, progress=False), sequence_length=32,
                                   pad_to_sequence_length=False)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    # 96 examples, batch 8: 12 batches an epoch (bucketing off, so the count is exact).
    train = make_classification_dataset(data, tokenizer, 8, shuffle=True, seed=3, epoch=epoch,
                                        bucket_boundaries=None, log_truncation=False)
    dev = make_classification_dataset(data, tokenizer, 32, bucket_boundaries=None, log_truncation=False)
    backbone = BertBackbone(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2, hidden_dim=16,
                            intermediate_dim=32, max_sequence_length=32, dropout=0.1)
    model = TextClassifier(backbone, num_classes=2)
    model.compile(optimizer=make_optimizer(1e-3, total_steps=36),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    log = open(os.path.join(run_dir, "events.jsonl"), "a")

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            log.write(json.dumps({"pid": os.getpid(), "epoch": int(epoch.numpy()), "batch": batch,
                                  "iterations": int(self.model.optimizer.iterations.numpy())}) + "\\n")
            log.flush()

        def on_train_batch_end(self, batch, logs=None):
            # fit_resumable's own backup callback runs after the user's: kill on the next batch.
            if int(epoch.numpy()) == kill_epoch and batch == kill_batch:
                os._exit(1)

    history = fit_resumable(model, train, epochs=3, backup_dir=os.path.join(run_dir, "backup"),
                            validation_data=dev, callbacks=[Record()], epoch_variable=epoch, save_every=5,
                            patience=patience, verbose=0)
    np.savez(os.path.join(run_dir, "final.npz"), *model.get_weights())
    with open(os.path.join(run_dir, "history.json"), "w") as f:
        json.dump(history.history, f)
    """
)


def _events(run_dir):
    with open(os.path.join(run_dir, "events.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _start(script, directory, kill_epoch, kill_batch, patience="none"):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    return subprocess.Popen(
        [sys.executable, str(script), str(directory), str(kill_epoch), str(kill_batch), patience],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )


def test_killed_mid_epoch_resumes_at_the_batch_and_matches_the_uninterrupted_run(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    run_dir, reference_dir = tmp_path / "run", tmp_path / "reference"
    run_dir.mkdir()
    reference_dir.mkdir()
    reference = _start(script, reference_dir, -1, -1)
    # Killed after batch index 7 of epoch 2: the last save was after 5 batches of that epoch.
    killed = _start(script, run_dir, 1, 7)
    out, _ = killed.communicate(timeout=300)
    assert killed.returncode == 1, out
    state = json.loads((run_dir / "backup" / "state.json").read_text())
    assert (state["epoch"], state["batch"]) == (1, 5)
    assert len(state["history"]["loss"]) == 1  # epoch 1 finished and recorded
    first = _events(run_dir)

    resumed = _start(script, run_dir, -1, -1)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    ref_out, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_out

    second = [e for e in _events(run_dir) if e["pid"] != first[0]["pid"]]
    # The resumed process starts in epoch 2 with 12 + 5 optimizer steps behind it, trains the
    # 7 batches left of that epoch, then the 12 of epoch 3.
    assert (second[0]["epoch"], second[0]["iterations"]) == (1, 17)
    assert sum(e["epoch"] == 1 for e in second) == 7
    assert sum(e["epoch"] == 2 for e in second) == 12
    want = np.load(reference_dir / "final.npz")
    got = np.load(run_dir / "final.npz")
    assert len(want.files) == len(got.files)
    for key in want.files:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6)
    history = json.loads((run_dir / "history.json").read_text())
    reference_history = json.loads((reference_dir / "history.json").read_text())
    assert len(history["loss"]) == 3
    # The interrupted epoch's training loss and accuracy are over all its 12 batches, the 5
    # before the kill included, as in the run that was never killed.
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert sorted(reference_history) == sorted(history)
    for key in history:
        np.testing.assert_allclose(history[key], reference_history[key], rtol=1e-5, err_msg=key)
    assert not (run_dir / "backup").exists()  # a finished run removes its backup


def _tiny_data(n=40):
    data = load_sentiment_dataset("train")
    data = dataclasses.replace(data, texts=data.texts[:n], labels=data.labels[:n])
    tokenizer = WordPieceTokenizer(learn_vocabulary(data.texts, 150, progress=False), sequence_length=24,
                                   pad_to_sequence_length=False)
    return data, tokenizer


def _first_tokens(ds):
    return np.concatenate([f["token_ids"][:, 1].numpy() for f, _ in ds])


def test_epoch_seeded_shuffle_is_a_function_of_seed_and_epoch():
    data, tokenizer = _tiny_data()
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    kwargs = dict(bucket_boundaries=None, log_truncation=False, shuffle=True, seed=1)
    ds = make_classification_dataset(data, tokenizer, 8, epoch=epoch, **kwargs)
    again = make_classification_dataset(data, tokenizer, 8, epoch=epoch, **kwargs)
    e0 = _first_tokens(ds)
    np.testing.assert_array_equal(_first_tokens(ds), e0)  # same epoch, same order
    np.testing.assert_array_equal(_first_tokens(again), e0)  # another dataset object too
    epoch.assign(1)
    e1 = _first_tokens(ds)
    assert not np.array_equal(e1, e0)
    # A permutation of the same examples: the multiset of labels and first tokens is unchanged.
    np.testing.assert_array_equal(np.sort(e1), np.sort(e0))
    unshuffled = _first_tokens(make_classification_dataset(data, tokenizer, 8, bucket_boundaries=None,
                                                            log_truncation=False))
    np.testing.assert_array_equal(np.sort(unshuffled), np.sort(e0))
    assert not np.array_equal(unshuffled, e0)


class _Interrupt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt (as a Ctrl-C would) in `epoch`: after batch index `batch` ends, or
    once validation starts (`batch` None). The epoch is told by `on_epoch_begin`, which fit calls
    with the run's epoch number (`initial_epoch`)."""

    def __init__(self, epoch, batch):
        super().__init__()
        self._at, self._batch, self._epoch = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch == self._at and batch == self._batch:
            raise KeyboardInterrupt

    def on_test_begin(self, logs=None):
        if self._epoch == self._at and self._batch is None:
            raise KeyboardInterrupt


def test_early_stopping_state_survives_an_interruption_and_best_weights_come_back(tmp_path):
    """A model that gets worse every epoch by its monitor (val_loss under mode "max", while plain
    SGD lowers the loss) stops `patience` = 2 epochs after its best, the first, with that epoch's
    weights. Interrupted in its last epoch (mid-epoch, or in the validation after the epoch's last
    batch), when `wait` is 1, and resumed into a new model, it stops after the same epoch with the
    same weights and history: `best`, `wait` and the best weights came through the backup."""
    data, tokenizer = _tiny_data()  # 40 examples: 5 batches of 8
    ds = make_classification_dataset(data, tokenizer, 8, bucket_boundaries=None, log_truncation=False)

    def make():
        keras.utils.set_random_seed(0)
        backbone = BertBackbone(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2, hidden_dim=8,
                                intermediate_dim=16, max_sequence_length=24, dropout=0.0)
        model = TextClassifier(backbone, num_classes=2)
        model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    saved = {}

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            saved[epoch] = [w.copy() for w in self.model.get_weights()]

    fit = dict(epochs=6, validation_data=ds, monitor="val_loss", mode="max", patience=2, verbose=0)
    reference = make()
    want = fit_resumable(reference, ds, backup_dir=str(tmp_path / "ref"), callbacks=[Snapshot()], save_every=2,
                         **fit).history
    losses = want["val_loss"]
    # The uninterrupted run: best at epoch 1, two epochs without improvement, stopped after epoch 3.
    assert int(np.argmax(losses)) == 0 and len(losses) == 3, losses
    for got, expected in zip(reference.get_weights(), saved[0]):
        np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(saved[2][0], saved[0][0])  # restoring the best epoch's weights is seen

    # Saves every 2 batches, interrupted after batch index 2 (3 of 5 done, 2 saved); or saves
    # every 5, interrupted in validation (all 5 saved: the resumed epoch has no batch to train).
    for name, save_every, at_batch, saved_batch in [("mid_epoch", 2, 2, 2), ("in_validation", 5, None, 5)]:
        backup = tmp_path / name
        with pytest.raises(KeyboardInterrupt):
            fit_resumable(make(), ds, backup_dir=str(backup), callbacks=[_Interrupt(2, at_batch)],
                          save_every=save_every, **fit)
        state = json.loads((backup / "state.json").read_text())
        assert (state["epoch"], state["batch"]) == (2, saved_batch), name
        assert (state["best_epoch"], state["wait"], state["stopped"]) == (0, 1, False), name
        np.testing.assert_allclose(state["best"], losses[0], rtol=1e-6, err_msg=name)

        resumed = make()
        got = fit_resumable(resumed, ds, backup_dir=str(backup), save_every=save_every, **fit).history
        assert sorted(got) == sorted(want) == ["accuracy", "loss", "val_accuracy", "val_loss"]
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=f"{name}: {key}")
        for got_weight, expected in zip(resumed.get_weights(), saved[0]):
            np.testing.assert_allclose(got_weight, expected, rtol=1e-5, atol=1e-6, err_msg=name)
        assert not backup.exists()
    with pytest.raises(ValueError, match="mode"):
        fit_resumable(resumed, ds, epochs=1, backup_dir=str(tmp_path / "c"), mode="up")


def test_a_distiller_interrupted_mid_epoch_resumes_in_a_new_object(tmp_path):
    """The same for the Distiller (teacher + student, soft and hard terms): interrupted after
    4 of 6 batches of its second epoch (last save after 2), resumed into freshly built models,
    it ends where the uninterrupted run ends, its history too."""
    from tfdistil.distillation import Distiller
    from tfdistil.models import DistilBertBackbone
    from tfdistil.training import make_optimizer

    data, tokenizer = _tiny_data(48)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    ds = make_classification_dataset(data, tokenizer, 8, shuffle=True, seed=2, epoch=epoch, bucket_boundaries=None,
                                     log_truncation=False)  # 6 batches

    def make():
        keras.utils.set_random_seed(0)
        size = dict(vocabulary_size=tokenizer.vocabulary_size(), num_heads=2, hidden_dim=16, intermediate_dim=32,
                    max_sequence_length=24)
        teacher = TextClassifier(BertBackbone(num_layers=2, **size), num_classes=2)
        student = TextClassifier(DistilBertBackbone(num_layers=1, **size), num_classes=2)
        distiller = Distiller(teacher, student, alpha=0.5, temperature=2.0)
        distiller.compile(optimizer=make_optimizer(1e-3, total_steps=18))
        return distiller

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(epoch.numpy()) == 1 and batch == 3:
                raise KeyboardInterrupt

    reference = make()
    want = fit_resumable(reference, ds, epochs=3, backup_dir=str(tmp_path / "ref"), epoch_variable=epoch,
                         save_every=2, verbose=0).history
    with pytest.raises(KeyboardInterrupt):
        fit_resumable(make(), ds, epochs=3, backup_dir=str(tmp_path / "run"), epoch_variable=epoch, save_every=2,
                      callbacks=[Interrupt()], verbose=0)
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert (state["epoch"], state["batch"]) == (1, 2)
    resumed = make()
    history = fit_resumable(resumed, ds, epochs=3, backup_dir=str(tmp_path / "run"), epoch_variable=epoch,
                            save_every=2, verbose=0)
    assert int(resumed.optimizer.iterations.numpy()) == 18
    assert len(history.history["loss"]) == 3
    # The Distiller's own trackers (total loss and each term) over all batches of the interrupted epoch.
    assert sorted(history.history) == sorted(want) and len(want) > 1
    for key in want:
        np.testing.assert_allclose(history.history[key], want[key], rtol=1e-5, err_msg=key)
    for got, expected in zip(resumed.student.get_weights(), reference.student.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for got, expected in zip(resumed.teacher.get_weights(), reference.teacher.get_weights()):
        np.testing.assert_array_equal(got, expected)  # frozen
