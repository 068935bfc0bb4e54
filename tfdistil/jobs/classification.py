"""Text classification jobs on the user's files: `finetune` a teacher, `distill_from_run`
a student from it, `evaluate_run` and `predict_run` with a saved model."""
import dataclasses
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfdistil import evaluation, report as reporting
from tfdistil.data import DataError, make_classification_dataset, read_text_classification, train_and_dev_datasets
from tfdistil.jobs.runs import (
    RunError,
    check_run_dir,
    load_run_label_names,
    load_run_model,
    load_run_tokenizer,
    save_run_label_names,
    save_run_tokenizer,
    write_json,
)
from tfdistil.jobs.teacher import build_teacher, check_teacher_source
from tfdistil.recipes import _fit_plain, augmented_training, count_batches, distil_students, history_lists
from tfdistil.training import precision_scope

FINETUNE_MODEL = "model"
# Peak learning rates when none is given: fine-tuning pretrained weights wants a small one,
# training from scratch a larger one.
HF_LEARNING_RATE = 5e-5
SCRATCH_LEARNING_RATE = 5e-4


@dataclasses.dataclass
class FinetuneConfig:
    """Everything `tfdistil finetune` needs; written to the run's config.json."""

    train: str
    dev: str
    hf: str | None = None
    preset: str | None = None
    vocabulary: str | None = None
    vocabulary_size: int = 1000
    num_layers: int | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str = "label"
    name: str = "finetune"
    runs_dir: str = "runs"
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float | None = None
    sequence_length: int = 128
    precision: str = "auto"
    patience: int = 2
    seed: int = 0
    verbose: int = 2


@dataclasses.dataclass
class DistillConfig:
    """`tfdistil distill --teacher RUN_DIR --train FILE --dev FILE`: settings of the students."""

    teacher: str
    train: str
    dev: str
    student_layers: int | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str = "label"
    name: str = "distill"
    runs_dir: str = "runs"
    student_epochs: int = 10
    batch_size: int = 32
    student_learning_rate: float = 5e-4
    alpha: float = 0.5
    temperature: float = 2.0
    hidden_cosine_weight: float = 1.0
    hard_labels_baseline: bool = True
    augment_copies: int = 0
    precision: str = "auto"
    patience: int = 5
    seed: int = 0
    verbose: int = 2


def _read_pair(config, label_names=None):
    """(train, dev) data; dev (and train, when given) must use `label_names`."""
    kwargs = dict(text_column=config.text_column, label_column=config.label_column,
                  text_pair_column=config.text_pair_column)
    train = read_text_classification(config.train, label_names=label_names, **kwargs)
    dev = read_text_classification(config.dev, label_names=train.label_names, **kwargs)
    return train, dev


# ----------------------------------------------------------------------------- finetune


def finetune(config):
    """Train a TextClassifier teacher on `config.train`, early-stopped on dev accuracy (best
    weights restored); writes runs/<name>/ (config.json, models/model.keras, vocab.txt,
    tokenizer.json, label_names.json, report.json). Returns the report dict."""
    check_teacher_source(config.hf, config.preset, config.vocabulary)
    start = time.time()
    train, dev = _read_pair(config)
    run_dir = os.path.join(config.runs_dir, config.name)
    os.makedirs(os.path.join(run_dir, "models"), exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    with precision_scope(config.precision) as (policy, reason):
        print(f"[tfdistil] data: {len(train)} train / {len(dev)} dev examples, labels {train.label_names}")
        model, tokenizer = build_teacher(
            "text_classification", train.num_classes, train.texts + (train.text_pairs or []), hf=config.hf,
            preset=config.preset, vocabulary=config.vocabulary, vocabulary_size=config.vocabulary_size,
            num_layers=config.num_layers, sequence_length=config.sequence_length,
        )
        source = {"hf": config.hf} if config.hf is not None else {"preset": config.preset}
        learning_rate = config.learning_rate
        if learning_rate is None:
            learning_rate = HF_LEARNING_RATE if config.hf is not None else SCRATCH_LEARNING_RATE
        write_json(os.path.join(run_dir, "config.json"),
                   dict(dataclasses.asdict(config), learning_rate=learning_rate, resolved_precision=policy))
        save_run_tokenizer(tokenizer, run_dir)
        save_run_label_names(train.label_names, run_dir)
        print(f"[tfdistil] teacher: {type(model.backbone).__name__} with {model.backbone.num_layers} layers, "
              f"{model.count_params():,} parameters")

        train_ds, dev_ds, epoch = train_and_dev_datasets(make_classification_dataset, train, dev, tokenizer,
                                                         config.batch_size, config.seed)
        history = _fit_plain(
            model, train_ds, dev_ds, config.epochs, count_batches(train_ds), learning_rate, run_dir,
            FINETUNE_MODEL, config.verbose, config.patience, epoch,
        )
        model.save(os.path.join(run_dir, "models", f"{FINETUNE_MODEL}.keras"))
        dev_accuracy = evaluation.accuracy(model, dev_ds)
    report = {
        "name": config.name,
        "model": FINETUNE_MODEL,
        **source,
        "dev_accuracy": dev_accuracy,
        "dev_examples": len(dev),
        "train_examples": len(train),
        "parameters": int(model.count_params()),
        "num_layers": int(model.backbone.num_layers),
        "label_names": list(train.label_names),
        "precision": policy,
        "precision_reason": reason,
        "history": history_lists(history),
        "wall_time_s": time.time() - start,
    }
    write_json(os.path.join(run_dir, "report.json"), report)
    print(f"[tfdistil] dev accuracy {dev_accuracy:.2%}; run: {run_dir}")
    return report


# ----------------------------------------------------------------------------- distill


def distill_from_run(config):
    """Distil a DistilBERT student (initialised from the teacher's layers, default layer map)
    from the fine-tuned teacher in `config.teacher`, train the same student on hard labels,
    and write the report of the embedded default run to runs/<name>/. Returns the report."""
    start = time.time()
    check_run_dir(config.teacher)
    label_names = load_run_label_names(config.teacher)
    tokenizer = load_run_tokenizer(config.teacher)
    train, dev = _read_pair(config, label_names=label_names)
    # The saved teacher keeps the dtype policy it was trained with.
    teacher_name, teacher = load_run_model(config.teacher)
    teacher_layers = teacher.backbone.num_layers
    student_layers = config.student_layers or max(teacher_layers // 2, 1)
    if not 1 <= student_layers <= teacher_layers:
        raise RunError(
            f"--student-layers {student_layers}: must be between 1 and the teacher's {teacher_layers} layers"
        )
    run_dir = os.path.join(config.runs_dir, config.name)
    os.makedirs(os.path.join(run_dir, "models"), exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    with precision_scope(config.precision) as (policy, reason):
        write_json(os.path.join(run_dir, "config.json"),
                   dict(dataclasses.asdict(config), student_layers=student_layers, resolved_precision=policy))
        save_run_tokenizer(tokenizer, run_dir)
        save_run_label_names(label_names, run_dir)
        print(f"[tfdistil] data: {len(train)} train / {len(dev)} dev examples, labels {label_names}")
        print(f"[tfdistil] teacher: {os.path.join(config.teacher, 'models', teacher_name + '.keras')}, "
              f"{teacher_layers} layers, {teacher.count_params():,} parameters")
        histories = {}
        teacher_report = os.path.join(config.teacher, "report.json")
        if os.path.isfile(teacher_report):
            with open(teacher_report, encoding="utf-8") as f:
                previous = json.load(f)
            if "history" in previous:
                histories["teacher"] = previous["history"]
        train_ds, dev_ds, epoch = train_and_dev_datasets(make_classification_dataset, train, dev, tokenizer,
                                                         config.batch_size, config.seed)
        steps = count_batches(train_ds)
        return distil_students(
            teacher, student_layers, train_ds, dev_ds, label_names, len(dev), steps, histories,
            config, run_dir, policy, reason, start, sequence_length=tokenizer.sequence_length, epoch_variable=epoch,
            distill_train=augmented_training(train, tokenizer, config.augment_copies, batch_size=config.batch_size,
                                             seed=config.seed, epoch_variable=epoch),
        )


# ----------------------------------------------------------------------------- evaluate, predict


def evaluate_run(run_dir, data, model=None, text_column=None, text_pair_column=None, label_column="label",
                 batch_size=32, output=None):
    """Accuracy of a run's saved model on a labelled file, and its confusion matrix (PNG).
    Writes the result as JSON to `output` (default RUN_DIR/evaluation_<model>_<file>.json,
    the PNG next to it) and returns it."""
    check_run_dir(run_dir)
    label_names = load_run_label_names(run_dir)
    tokenizer = load_run_tokenizer(run_dir)
    data_ = read_text_classification(data, text_column=text_column, label_column=label_column,
                                     text_pair_column=text_pair_column, label_names=label_names)
    name, model_ = load_run_model(run_dir, model)
    ds = make_classification_dataset(data_, tokenizer, batch_size, log_truncation=False)
    y_true, y_pred = evaluation.predict_labels(model_, ds)
    if output is None:
        stem = os.path.splitext(os.path.basename(str(data)))[0]
        output = os.path.join(run_dir, f"evaluation_{name}_{stem}.json")
    plot = os.path.splitext(output)[0] + "_confusion_matrix.png"
    reporting.plot_confusion_matrix(y_true, y_pred, label_names, plot, title=f"{name}, {os.path.basename(str(data))}")
    confusion = np.zeros((len(label_names), len(label_names)), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    result = {
        "run": str(run_dir),
        "model": name,
        "data": str(data),
        "examples": int(len(y_true)),
        "correct": int(np.sum(y_true == y_pred)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "label_names": list(label_names),
        "confusion_matrix": confusion.tolist(),
        "confusion_matrix_png": plot,
    }
    write_json(output, result)
    result["output"] = output
    return result


def predict_run(run_dir, texts, model=None, batch_size=32, text_pairs=None):
    """(label, probability) of each text (with `text_pairs`: of each text pair) by a run's saved
    model, in input order."""
    check_run_dir(run_dir)
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise RunError(f"{len(texts)} texts but {len(text_pairs)} second texts")
    label_names = load_run_label_names(run_dir)
    tokenizer = load_run_tokenizer(run_dir)
    _, model_ = load_run_model(run_dir, model)
    results = []
    infer = evaluation.inference_function(model_)
    for i in range(0, len(texts), batch_size):
        segments = [tf.constant(texts[i: i + batch_size], tf.string)]
        if text_pairs is not None:
            segments.append(tf.constant(text_pairs[i: i + batch_size], tf.string))
        features = tokenizer(*segments)
        logits = np.asarray(infer(features), dtype=np.float64)  # (batch, classes)
        logits -= logits.max(axis=-1, keepdims=True)
        probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
        for row in probs:
            k = int(np.argmax(row))
            results.append((label_names[k], float(row[k])))
    return results


__all__ = ["FinetuneConfig", "DistillConfig", "finetune", "distill_from_run", "evaluate_run", "predict_run",
           "DataError", "RunError"]
