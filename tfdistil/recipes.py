"""End-to-end jobs. `distill_default` is README's first command: teacher from scratch on
the embedded sentiment data, a student with half its layers distilled from it, the same
student on hard labels alone, and a report comparing the three."""
import dataclasses
import json
import logging
import os
import time

import keras

from tfdistil import evaluation, report as reporting
from tfdistil.data import load_sentiment_dataset, make_classification_dataset, train_and_dev_datasets
from tfdistil.data.augment import with_augmented
from tfdistil.distillation import Distiller, init_student_from_teacher
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier
from tfdistil.text import WordPieceTokenizer, learn_vocabulary, save_vocabulary
from tfdistil.training import fit_run, make_optimizer, precision_scope

logger = logging.getLogger("tfdistil")


@dataclasses.dataclass
class DefaultRunConfig:
    """Everything `tfdistil distill` (embedded default) needs; written to config.json."""

    name: str = "quickstart"
    runs_dir: str = "runs"
    precision: str = "auto"
    seed: int = 0
    vocabulary_size: int = 1000
    sequence_length: int = 32
    teacher_preset: str = "bert_tiny"
    teacher_num_layers: int = 4
    teacher_epochs: int = 15
    student_epochs: int = 10
    batch_size: int = 32
    teacher_learning_rate: float = 5e-4
    student_learning_rate: float = 5e-4
    alpha: float = 0.5
    temperature: float = 2.0
    hidden_cosine_weight: float = 1.0
    hard_labels_baseline: bool = True
    augment_copies: int = 0
    patience: int = 5
    verbose: int = 2


def _sparse_ce():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def history_lists(history):
    """A Keras History.history dict as JSON-ready lists of floats."""
    return {k: [float(v) for v in vals] for k, vals in history.items()}


def count_batches(dataset):
    """Batches in one pass (length bucketing makes tf.data's cardinality unknown)."""
    n = int(dataset.cardinality())
    return n if n >= 0 else sum(1 for _ in dataset)


def _fit_plain(model, train_ds, dev_ds, epochs, steps_per_epoch, lr, run_dir, name, verbose, patience,
               epoch_variable=None):
    model.compile(optimizer=make_optimizer(lr, epochs * steps_per_epoch), loss=_sparse_ce(), metrics=["accuracy"])
    history = fit_run(model, train_ds, dev_ds, epochs=epochs, run_dir=run_dir, name=name, patience=patience,
                      epoch_variable=epoch_variable, verbose=verbose)
    return history.history


def _model_row(name, model, dev_ds, seq_len):
    return {
        "model": name,
        "accuracy": evaluation.accuracy(model, dev_ds),
        "parameters": int(model.count_params()),
        "size_mb": evaluation.size_on_disk_mb(model),
        "latency_ms_batch1": evaluation.latency_ms(model, 1, seq_len),
        "latency_ms_batch32": evaluation.latency_ms(model, 32, seq_len),
    }


def distill_default(config=None):
    """Run the embedded default job; returns the report dict (also written to disk)."""
    config = config or DefaultRunConfig()
    start = time.time()
    run_dir = os.path.join(config.runs_dir, config.name)
    os.makedirs(run_dir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    with precision_scope(config.precision) as (policy, reason):
        return _distill_default(config, run_dir, policy, reason, start)


def _distill_default(config, run_dir, policy, reason, start):
    config_path = os.path.join(run_dir, "config.json")
    run_config = dict(dataclasses.asdict(config), resolved_precision=policy)
    same_run = False
    if os.path.exists(config_path):
        # Where the run lives and how it talks do not change what it trains.
        ignore = ("runs_dir", "name", "verbose")
        with open(config_path, encoding="utf-8") as f:
            previous = {k: v for k, v in json.load(f).items() if k not in ignore}
        same_run = previous == {k: v for k, v in run_config.items() if k not in ignore}
    with open(config_path, "w", encoding="utf-8") as f:
        json.dump(run_config, f, indent=2)
    models_dir = os.path.join(run_dir, "models")
    os.makedirs(models_dir, exist_ok=True)
    teacher_path = os.path.join(models_dir, "teacher.keras")

    train, dev = load_sentiment_dataset("train"), load_sentiment_dataset("dev")
    print(f"[tfdistil] data: {len(train)} train / {len(dev)} dev sentences, labels {train.label_names}")
    vocab = learn_vocabulary(train.texts, config.vocabulary_size, progress=False)
    save_vocabulary(vocab, os.path.join(run_dir, "vocab.txt"))
    tokenizer = WordPieceTokenizer(vocab, sequence_length=config.sequence_length, pad_to_sequence_length=False)
    train_ds, dev_ds, epoch = train_and_dev_datasets(make_classification_dataset, train, dev, tokenizer,
                                                     config.batch_size, config.seed)
    steps_per_epoch = count_batches(train_ds)

    history_path = os.path.join(run_dir, "teacher_history.json")
    if same_run and os.path.exists(teacher_path) and os.path.exists(history_path):
        # An interrupted run of the same config: the teacher finished; keep it.
        teacher = keras.models.load_model(teacher_path)
        with open(history_path, encoding="utf-8") as f:
            histories = {"teacher": json.load(f)}
        print(f"[tfdistil] teacher: reusing {teacher_path} from the interrupted run")
    else:
        teacher_bb = BertBackbone.from_preset(
            config.teacher_preset, vocabulary_size=len(vocab), max_sequence_length=config.sequence_length,
            num_layers=config.teacher_num_layers,
        )
        teacher = TextClassifier(teacher_bb, num_classes=train.num_classes, name="teacher")
        print(
            f"[tfdistil] teacher: {config.teacher_preset} with {teacher_bb.num_layers} layers, "
            f"{teacher.count_params():,} parameters"
        )
        history = _fit_plain(
            teacher, train_ds, dev_ds, config.teacher_epochs, steps_per_epoch, config.teacher_learning_rate,
            run_dir, "teacher", config.verbose, config.patience, epoch,
        )
        histories = {"teacher": history_lists(history)}
        # Saved now, trainable (the Distiller freezes it) and before the students start,
        # so an interrupted run does not train it again.
        teacher.save(teacher_path)
        with open(history_path, "w", encoding="utf-8") as f:
            json.dump(histories["teacher"], f)
    student_layers = max(teacher.backbone.num_layers // 2, 1)
    return distil_students(
        teacher, student_layers, train_ds, dev_ds, dev.label_names, len(dev), steps_per_epoch, histories,
        config, run_dir, policy, reason, start, sequence_length=config.sequence_length, epoch_variable=epoch,
        distill_train=augmented_training(train, tokenizer, config.augment_copies, batch_size=config.batch_size,
                                         seed=config.seed, epoch_variable=epoch),
    )


def augmented_training(train, tokenizer, copies, *, batch_size, seed, epoch_variable=None):
    """The distilled student's own training data when `copies` > 0: `train` followed by that
    many perturbed copies of each sentence that only the teacher labels (`tfdistil.data.augment`;
    the hard-label student cannot use them). Returns (dataset, steps per epoch, augmented
    examples), or None for `copies` 0."""
    if not copies:
        return None
    data = with_augmented(train, copies, mask_token=tokenizer.mask_token, seed=seed)
    added = len(data) - len(train)
    print(f"[tfdistil] distillation data: {len(train)} sentences + {added} augmented copies (teacher-labelled)")
    ds = make_classification_dataset(data, tokenizer, batch_size, shuffle=True, seed=seed, epoch=epoch_variable)
    return ds, count_batches(ds), added


def distil_students(teacher, student_layers, train_ds, dev_ds, label_names, dev_examples, steps_per_epoch,
                    histories, config, run_dir, policy, reason, start, sequence_length, epoch_variable=None,
                    distill_train=None):
    """A DistilBERT student of `student_layers` layers initialised from `teacher` (default
    layer map), distilled from it, the same student trained on hard labels alone (unless
    `config.hard_labels_baseline` is false), and the report comparing them (report.json/md, plots,
    models/student_*.keras; each student's row has its training time, `train_time_s`).

    `config` gives the student settings (`student_epochs`, `student_learning_rate`, `alpha`,
    `temperature`, `hidden_cosine_weight`, `patience`, `verbose`, `name`); `histories` holds the
    teacher's training history when it is known; the teacher is not saved here. `distill_train`,
    from `augmented_training`, is the distilled student's own training data when it differs."""
    distill_ds, distill_steps, augmented = distill_train or (train_ds, steps_per_epoch, 0)
    models_dir = os.path.join(run_dir, "models")
    os.makedirs(models_dir, exist_ok=True)
    teacher_bb = teacher.backbone
    num_classes = len(label_names)

    def make_student(name):
        backbone = DistilBertBackbone(
            vocabulary_size=teacher_bb.vocabulary_size, num_layers=student_layers,
            num_heads=teacher_bb.num_heads, hidden_dim=teacher_bb.hidden_dim,
            intermediate_dim=teacher_bb.intermediate_dim, max_sequence_length=sequence_length,
        )
        student = TextClassifier(backbone, num_classes=num_classes, name=name)
        layer_map = init_student_from_teacher(student, teacher)
        return student, layer_map

    student, layer_map = make_student("student_distilled")
    # Built before any training, so a seed gives the same students with or without the baseline.
    hard_student = make_student("student_hard_labels")[0] if config.hard_labels_baseline else None
    print(f"[tfdistil] student: {student.backbone.num_layers} layers from teacher layers {layer_map}")
    distiller = Distiller(
        teacher, student, alpha=config.alpha, temperature=config.temperature,
        hidden_cosine_weight=config.hidden_cosine_weight, layer_map=layer_map,
    )
    distiller.compile(
        optimizer=make_optimizer(config.student_learning_rate, config.student_epochs * distill_steps),
        metrics=["accuracy"],
    )
    train_times = {}
    began = time.time()
    h = fit_run(distiller, distill_ds, dev_ds, epochs=config.student_epochs, run_dir=run_dir, name="student_distilled",
                patience=config.patience, epoch_variable=epoch_variable, verbose=config.verbose)
    train_times["student (distilled)"] = time.time() - began
    histories["student (distilled)"] = h.history
    models = [("teacher", teacher), ("student (distilled)", student)]
    if hard_student is not None:
        began = time.time()
        histories["student (hard labels)"] = _fit_plain(
            hard_student, train_ds, dev_ds, config.student_epochs, steps_per_epoch, config.student_learning_rate,
            run_dir, "student_hard_labels", config.verbose, config.patience, epoch_variable,
        )
        train_times["student (hard labels)"] = time.time() - began
        models.append(("student (hard labels)", hard_student))

    rows = []
    for label, model in models:
        if model is not teacher:
            model.save(os.path.join(models_dir, f"{model.name}.keras"))
        rows.append(_model_row(label, model, dev_ds, sequence_length))
        if label in train_times:
            rows[-1]["train_time_s"] = train_times[label]
    for row in rows:
        row["speedup_batch32"] = rows[0]["latency_ms_batch32"] / row["latency_ms_batch32"]
        row["speedup_batch1"] = rows[0]["latency_ms_batch1"] / row["latency_ms_batch1"]

    reporting.plot_training_curves(histories, os.path.join(run_dir, "training_curves.png"))
    reporting.plot_accuracy_vs_latency(rows, os.path.join(run_dir, "accuracy_vs_latency.png"))
    y_true, y_pred = evaluation.predict_labels(student, dev_ds)
    reporting.plot_confusion_matrix(
        y_true, y_pred, label_names, os.path.join(run_dir, "confusion_matrix.png"),
        title="distilled student, dev",
    )
    teacher_acc, distilled_acc = rows[0]["accuracy"], rows[1]["accuracy"]
    versus = f" vs hard labels only {rows[2]['accuracy']:.1%}" if len(rows) > 2 else ""
    report = {
        "name": config.name,
        "summary": (
            f"Teacher {teacher_acc:.1%}; student distilled {distilled_acc:.1%}{versus}; "
            f"student is {rows[1]['speedup_batch32']:.2f}x faster at batch 32."
        ),
        "precision": policy,
        "precision_reason": reason,
        "dev_examples": dev_examples,
        # Where the students' knowledge came from (the export's model card names it).
        "teacher": {
            "source": getattr(config, "teacher", None) or "models/teacher.keras (this run)",
            "parameters": int(teacher.count_params()),
            "num_layers": int(teacher.backbone.num_layers),
        },
        "layer_map": layer_map,
        "augmented_examples": augmented,
        "models": rows,
        "histories": {name: history_lists(hist) for name, hist in histories.items()},
        "plots": ["training_curves.png", "accuracy_vs_latency.png", "confusion_matrix.png"],
        "wall_time_s": time.time() - start,
    }
    reporting.write_report(run_dir, report)
    print("\n" + reporting.markdown_table(rows, reporting.MODEL_COLUMNS))
    print(f"\n[tfdistil] {report['summary']}\n[tfdistil] report: {os.path.join(run_dir, 'report.md')}")
    return report
