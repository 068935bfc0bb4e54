"""The jobs, written once over the task declarations (`tfdistil.tasks`):

    files -> task.read -> task.dataset (tf.data) -> model.fit -> report / export

`finetune` trains a teacher, `distill` a DistilBERT student of a teacher (from a finished run, or
trained in the same run: the embedded default), `evaluate` and `predict` use a run's saved
model. Every job reads and writes a run folder (`tfdistil.jobs.runs`)."""
import contextlib
import json
import os
import shutil
import time
import warnings

import numpy as np

from tfdistil.jobs.config import RunConfig
from tfdistil.jobs.runs import (
    RunError,
    check_run_dir,
    load_run_label_names,
    load_run_model,
    load_run_tokenizer,
    run_config,
    run_task,
    save_run_label_names,
    save_run_tokenizer,
    write_json,
)
from tfdistil.tasks import detect_task, get_task
from tfdistil.tasks.base import distillation_lesson

FINETUNE_MODEL = "model"
TEACHER_MODEL = "teacher"
# Peak learning rates when none is given: fine-tuning pretrained weights wants a small one,
# training from scratch a larger one.
HF_LEARNING_RATE = 5e-5
SCRATCH_LEARNING_RATE = 5e-4
# Row labels of a distillation report, and the file names of the students.
DISTILLED, HARD_LABELS = "student (distilled)", "student (hard labels)"
STUDENT_FILES = {DISTILLED: "student_distilled", HARD_LABELS: "student_hard_labels"}


def history_lists(history):
    """A Keras History.history dict as JSON-ready lists of floats."""
    return {k: [float(v) for v in vals] for k, vals in history.items()}


def count_batches(dataset):
    """Batches in one pass (length bucketing makes tf.data's cardinality unknown)."""
    n = int(dataset.cardinality())
    return n if n >= 0 else sum(1 for _ in dataset)


def _log(message):
    print(f"[tfdistil] {message}")


# ----------------------------------------------------------------------------- training


def fit_model(task, model, train_ds, dev_ds, *, epochs, steps_per_epoch, learning_rate, run_dir, name, config,
              epoch_variable=None, distiller=False):
    """Compile `model` (a task model with the task's loss, or a Distiller) and fit it with
    resumable backups, TensorBoard logs and early stopping on the task's monitor. Returns the
    history as lists."""
    from tfdistil.training import fit_run, fit_verbosity, make_optimizer

    optimizer = make_optimizer(learning_rate, epochs * steps_per_epoch)
    if distiller:
        model.compile(optimizer=optimizer, metrics=task.distill_metrics())
        monitor, mode = task.distill_monitor
    else:
        model.compile(optimizer=optimizer, loss=task.finetune_loss(), metrics=task.finetune_metrics())
        monitor, mode = task.finetune_monitor
    with warnings.catch_warnings():
        for pattern in task.ignored_warnings():
            warnings.filterwarnings("ignore", message=pattern)
        history = fit_run(model, train_ds, dev_ds, epochs=epochs, run_dir=run_dir, name=name,
                          patience=config.training.patience, monitor=monitor, mode=mode,
                          epoch_variable=epoch_variable, verbose=fit_verbosity(config.training.verbose),
                          callbacks=task.epoch_callbacks(dev_ds))
    _remove_if_empty(os.path.join(run_dir, "backup"))  # fit_run removed this model's backup
    return history_lists(history.history)


def _remove_if_empty(folder):
    try:
        os.rmdir(folder)
    except OSError:  # not there, or not empty: an interrupted fit's backup to resume from
        pass


@contextlib.contextmanager
def _run_folder(run_dir):
    """A job's run folder: one the job made is removed again if the job fails before any model
    or backup was written in it (a bad checkpoint, a bad file), so a failure leaves no stub."""
    existed = os.path.exists(run_dir)
    try:
        yield
    except BaseException:
        if not existed and os.path.isdir(run_dir):
            written = [os.path.join(d, f) for sub in ("models", "backup") for d, _, files in
                       os.walk(os.path.join(run_dir, sub)) for f in files]
            if not written:
                shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _datasets(task, train, dev, tokenizer, batch_size, seed):
    """(train dataset reshuffled by epoch, dev dataset, the epoch variable, steps per epoch)."""
    import tensorflow as tf

    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    train_ds = task.dataset(train, tokenizer, batch_size, shuffle=True, seed=seed, epoch=epoch)
    dev_ds = task.dataset(dev, tokenizer, batch_size)
    return train_ds, dev_ds, epoch, count_batches(train_ds)


def _read(task, config, label_names=None):
    """(the declaration for this data (`TaskSpec.for_data`), train, dev) of `config.data`; dev (and
    train, when given) use `label_names`."""
    _require_files(config)
    train = task.read(config.data.train, config.data, label_names=label_names)
    dev = task.read(config.data.dev, config.data, label_names=train.label_names)
    _warn_missing_classes(dev)
    return task.for_data(train), train, dev


def _warn_missing_classes(dev):
    """A dev set without some classes never scores them: say which (not an error: a small dev set
    may lack a rare class)."""
    names = getattr(dev, "label_names", None)
    labels = getattr(dev, "labels", None)
    if not names or labels is None or getattr(dev, "regression", False):
        return
    present = set(np.asarray(labels).tolist())
    missing = [name for i, name in enumerate(names) if i not in present]
    if missing:
        _log(f"warning: {dev.path} has no example of the classes {missing}")


def _task(config):
    """The declaration of `config.data.task`, or of the task detected from the training file."""
    if config.data.task is not None or config.data.train is None:
        return get_task(config.data.task or "classification")
    return get_task(detect_task(config.data.train, config.data))


def _log_data(task, train, dev):
    _log(f"data: {len(train)} train / {len(dev)} dev {task.examples}, {task.describe_data(train)}")
    detected = getattr(train, "detected", None)  # the layout a text reader found
    if detected is not None:
        _log(f"data format: {detected.describe()}; task {task.name}, main metric {task.main_metric}")


def _require_files(config):
    missing = [f"--{k}" for k in ("train", "dev") if getattr(config.data, k) is None]
    if missing:
        raise RunError(f"the following arguments are required: {', '.join(missing)}")


def _learning_rate(config):
    if config.teacher.teacher_learning_rate is not None:
        return config.teacher.teacher_learning_rate
    return HF_LEARNING_RATE if config.teacher.hf is not None else SCRATCH_LEARNING_RATE


def _start_run(config, task, resolved):
    """Make the run folder, seed everything, and write config.json; returns (run_dir, whether a
    previous config.json of the same run was there: an interrupted run to continue)."""
    import keras

    run_dir = config.run_dir
    os.makedirs(os.path.join(run_dir, "models"), exist_ok=True)
    keras.utils.set_random_seed(config.training.seed)
    values = {**config.flat(), "task": task.name, **resolved}
    path = os.path.join(run_dir, "config.json")
    same_run = False
    if os.path.exists(path):
        # Where the run lives and how it talks do not change what it trains.
        ignore = ("runs_dir", "name", "verbose")
        with open(path, encoding="utf-8") as f:
            previous = {k: v for k, v in json.load(f).items() if k not in ignore}
        same_run = previous == {k: v for k, v in values.items() if k not in ignore}
    write_json(path, values)
    return run_dir, same_run


def _train_teacher(task, config, train, dev, run_dir, model_name, policy, resume=False):
    """Build the teacher (`tfdistil.jobs.teacher.build_teacher`), save its tokenizer and labels in
    the run, and fit it; with `resume`, a teacher saved by an interrupted run of the same config is
    kept. Returns (model, tokenizer, history, datasets)."""
    import keras

    from tfdistil.jobs.teacher import build_teacher

    t = config.teacher
    model, tokenizer = build_teacher(
        task, train.num_classes, task.vocabulary_texts(train), hf=t.hf, preset=t.preset, vocabulary=t.vocabulary,
        vocabulary_size=t.vocabulary_size, num_layers=t.teacher_num_layers,
        sequence_length=config.data.sequence_length,
    )
    save_run_tokenizer(tokenizer, run_dir)
    save_run_label_names(train.label_names, run_dir)
    datasets = _datasets(task, train, dev, tokenizer, config.data.batch_size, config.training.seed)
    train_ds, dev_ds, epoch, steps = datasets
    model_path = os.path.join(run_dir, "models", f"{model_name}.keras")
    history_path = os.path.join(run_dir, f"{model_name}_history.json")
    if resume and os.path.exists(model_path) and os.path.exists(history_path):
        with open(history_path, encoding="utf-8") as f:
            history = json.load(f)
        _log(f"teacher: reusing {model_path} from the interrupted run")
        return keras.models.load_model(model_path), tokenizer, history, datasets
    _log(f"teacher: {type(model.backbone).__name__} with {model.backbone.num_layers} layers, "
         f"{model.count_params():,} parameters")
    history = fit_model(task, model, train_ds, dev_ds, epochs=t.teacher_epochs, steps_per_epoch=steps,
                        learning_rate=_learning_rate(config), run_dir=run_dir, name=model_name, config=config,
                        epoch_variable=epoch)
    # Saved now, trainable (the Distiller freezes it) and before any student starts, so an
    # interrupted run does not train it again.
    model.save(model_path)
    write_json(history_path, history)
    return model, tokenizer, history, datasets


def _report_base(config, task, train, dev, policy, reason, start):
    return {
        "name": config.training.name,
        "task": task.name,
        "label_names": None if train.label_names is None else list(train.label_names),
        "train_examples": len(train),
        "dev_examples": len(dev),
        **task.report_extras(train),
        "precision": policy,
        "precision_reason": reason,
        "wall_time_s": time.time() - start,
    }


def _write_report(task, run_dir, report):
    write_json(os.path.join(run_dir, "report.json"), report)
    with open(os.path.join(run_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(task.markdown(report))


# ----------------------------------------------------------------------------- finetune


def finetune(config):
    """Fine-tune a teacher (a local Hugging Face checkpoint `hf`, or a `preset` size from scratch)
    on `config.data.train`, early-stopped on dev (best weights restored). Writes the run folder
    (config.json, models/model.keras, vocab.txt, tokenizer.json, label_names.json,
    report.json/md) and returns the report."""
    from tfdistil.jobs.teacher import check_teacher_source
    from tfdistil.training import precision_scope

    config = _as_config(config)
    task = _task(config)
    check_teacher_source(config.teacher.hf, config.teacher.preset, config.teacher.vocabulary)
    start = time.time()
    task, train, dev = _read(task, config)
    with _run_folder(config.run_dir), precision_scope(config.training.precision) as (policy, reason):
        run_dir, _ = _start_run(config, task, {"teacher_learning_rate": _learning_rate(config),
                                               "resolved_precision": policy, **task.recorded_settings(train)})
        _log_data(task, train, dev)
        model, tokenizer, history, _ = _train_teacher(task, config, train, dev, run_dir, FINETUNE_MODEL, policy)
        row = task.model_row(FINETUNE_MODEL, model, task.score(model, dev, tokenizer, config.data.batch_size),
                             tokenizer)
    source = {"hf": config.teacher.hf} if config.teacher.hf is not None else {"preset": config.teacher.preset}
    report = {
        **_report_base(config, task, train, dev, policy, reason, start),
        "summary": task.summary([row]),
        "model": FINETUNE_MODEL,
        **source,
        f"dev_{task.main_metric}": row[task.main_metric],
        "parameters": int(model.count_params()),
        "num_layers": int(model.backbone.num_layers),
        "models": [row],
        "histories": {FINETUNE_MODEL: history},
        "wall_time_s": time.time() - start,
    }
    _write_report(task, run_dir, report)
    _log(f"{report['summary']} run: {run_dir}")
    return report


# ----------------------------------------------------------------------------- distill


def _teacher_from_run(config, task):
    """(task, teacher model, tokenizer, label names, teacher histories, source) of `config.teacher.teacher`."""
    teacher_dir = check_run_dir(config.teacher.teacher)
    trained_for = run_task(teacher_dir)
    if config.data.task is not None and config.data.task != trained_for:
        raise RunError(f"--task {config.data.task}: the teacher in {teacher_dir} was trained for {trained_for!r}")
    task = get_task(trained_for)
    label_names = load_run_label_names(teacher_dir)
    tokenizer = load_run_tokenizer(teacher_dir)
    name, teacher = load_run_model(teacher_dir)
    if type(teacher) is not task.head:
        raise RunError(f"{teacher_dir}: model {name!r} is a {type(teacher).__name__}, not a {task.head.__name__} "
                       f"for task {task.name!r}")
    histories = {}
    report_path = os.path.join(teacher_dir, "report.json")
    if os.path.isfile(report_path):
        with open(report_path, encoding="utf-8") as f:
            previous = json.load(f)
        history = (previous.get("histories") or {}).get(name) or previous.get("history")
        if history:
            histories[TEACHER_MODEL] = history
    _log(f"teacher: {os.path.join(teacher_dir, 'models', name + '.keras')}, {teacher.backbone.num_layers} layers, "
         f"{teacher.count_params():,} parameters")
    return task, teacher, tokenizer, label_names, histories, str(teacher_dir)


def _student_layers(config, teacher):
    layers = config.student.student_layers or max(teacher.backbone.num_layers // 2, 1)
    if not 1 <= layers <= teacher.backbone.num_layers:
        raise RunError(f"--student-layers {layers}: must be between 1 and the teacher's "
                       f"{teacher.backbone.num_layers} layers")
    return layers


def make_student(task, teacher, config, num_layers, num_classes, sequence_length, name):
    """A DistilBERT student with the task's head: the teacher's width unless the config says
    otherwise; initialised from the teacher's layers (`layer_map`) when as wide as the teacher.
    Returns (student, layer map or None for a random init)."""
    from tfdistil.distillation import init_student_from_teacher
    from tfdistil.models import DistilBertBackbone

    t_bb, s = teacher.backbone, config.student
    backbone = DistilBertBackbone(
        vocabulary_size=t_bb.vocabulary_size, num_layers=num_layers,
        num_heads=s.student_num_heads or t_bb.num_heads, hidden_dim=s.student_hidden_dim or t_bb.hidden_dim,
        intermediate_dim=s.student_intermediate_dim or t_bb.intermediate_dim, max_sequence_length=sequence_length,
    )
    student = task.build_head(backbone, num_classes, name=name)
    if (backbone.hidden_dim, backbone.num_heads) != (t_bb.hidden_dim, t_bb.num_heads):
        return student, None
    try:
        return student, init_student_from_teacher(student, teacher, layer_map=s.layer_map)
    except ValueError as error:
        raise RunError(f"cannot initialise the student from the teacher: {error}") from None


def augmented_training(task, train, tokenizer, copies, *, batch_size, seed, epoch_variable=None):
    """The distilled student's own training data when `copies` > 0: `train` followed by that many
    perturbed copies of each sentence that only the teacher labels (`tfdistil.data.augment`).
    Returns (dataset, steps per epoch, augmented examples), or None for `copies` 0."""
    if not copies:
        return None
    if not task.augmentable:
        raise RunError(f"--augment-copies: task {task.name!r} has no text augmentation")
    from tfdistil.data.augment import with_augmented

    data = with_augmented(train, copies, mask_token=tokenizer.mask_token, seed=seed)
    added = len(data) - len(train)
    _log(f"distillation data: {len(train)} sentences + {added} augmented copies (teacher-labelled)")
    ds = task.dataset(data, tokenizer, batch_size, shuffle=True, seed=seed, epoch=epoch_variable)
    return ds, count_batches(ds), added


def distillation_dataset(task, teacher, train, tokenizer, config, datasets):
    """The distilled student's training batches, steps per epoch and augmented examples: the
    training set, or `augmented_training`'s; with `cache_teacher_logits`, batches made once and
    carrying the teacher's logits (`cache_teacher_outputs`: computed in the first epoch, then
    reused), their order reshuffled each epoch."""
    from tfdistil.distillation import cache_teacher_outputs

    train_ds, _, epoch, steps = datasets
    d, seed, cache = config.data, config.training.seed, config.student.cache_teacher_logits
    made = augmented_training(task, train, tokenizer, d.augment_copies, batch_size=d.batch_size, seed=seed,
                              epoch_variable=None if cache else epoch)
    if not cache:
        return made or (train_ds, steps, 0)
    s = config.student
    if s.hidden_cosine_weight or s.hidden_mse_weight or s.attention_weight:
        raise RunError("--cache-teacher-logits: cached logits cannot feed the hidden-state and attention terms; "
                       "set --hidden-cosine-weight, --hidden-mse-weight and --attention-weight to 0")
    ds, steps, added = made or (task.dataset(train, tokenizer, d.batch_size, shuffle=True, seed=seed,
                                             log_truncation=False), steps, 0)
    return cache_teacher_outputs(teacher, ds).shuffle(steps, seed=seed, reshuffle_each_iteration=True), steps, added


def distill(config):
    """Distil a DistilBERT student from a teacher and train the same student on hard labels for
    comparison (unless `hard_labels_baseline` is false). The teacher is `config.teacher.teacher`
    (a finished run) or, without it, trained here first from `hf`/`preset` (the embedded default
    run). Writes the run folder (models/student_*.keras, report.json/md, plots, ...) and returns
    the report."""
    from tfdistil.training import precision_scope

    config = _as_config(config)
    if config.data.augment_copies < 0:
        raise RunError(f"--augment-copies must be >= 0, got {config.data.augment_copies}")
    start = time.time()
    from_run = config.teacher.teacher is not None
    if from_run:
        task, teacher, tokenizer, label_names, histories, source = _teacher_from_run(config, None)
        task, train, dev = _read(task, config, label_names=label_names)
        student_layers = _student_layers(config, teacher)
        resolved = {"task": task.name, "student_layers": student_layers}
    else:
        task, train, dev = _read(_task(config), config)
        label_names, histories, source = train.label_names, {}, "models/teacher.keras (this run)"
        resolved = {"teacher_learning_rate": _learning_rate(config)}
    resolved.update(task.recorded_settings(train))
    with _run_folder(config.run_dir), precision_scope(config.training.precision) as (policy, reason):
        run_dir, same_run = _start_run(config, task, dict(resolved, resolved_precision=policy))
        _log_data(task, train, dev)
        if from_run:
            save_run_tokenizer(tokenizer, run_dir)
            save_run_label_names(label_names, run_dir)
            datasets = _datasets(task, train, dev, tokenizer, config.data.batch_size, config.training.seed)
        else:
            teacher, tokenizer, history, datasets = _train_teacher(task, config, train, dev, run_dir, TEACHER_MODEL,
                                                                   policy, resume=same_run)
            histories[TEACHER_MODEL] = history
            student_layers = _student_layers(config, teacher)
        report = _distil_students(task, config, teacher, student_layers, train, dev, tokenizer, datasets, histories,
                                  run_dir)
    report = {
        **_report_base(config, task, train, dev, policy, reason, start),
        # Where the students' knowledge came from (the export's model card names it).
        "teacher": {"source": source, "parameters": int(teacher.count_params()),
                    "num_layers": int(teacher.backbone.num_layers)},
        **report,
        "wall_time_s": time.time() - start,
    }
    _write_report(task, run_dir, report)
    print("\n" + task.markdown(report))
    for line in (report["summary"], report["why"], f"report: {os.path.join(run_dir, 'report.md')}"):
        if line:
            _log(line)
    return report


def _distil_students(task, config, teacher, student_layers, train, dev, tokenizer, datasets, histories, run_dir):
    from tfdistil.distillation import Distiller

    train_ds, dev_ds, epoch, steps = datasets
    s = config.student
    distill_ds, distill_steps, augmented = distillation_dataset(task, teacher, train, tokenizer, config, datasets)
    args = (task, teacher, config, student_layers, train.num_classes, tokenizer.sequence_length)
    student, layer_map = make_student(*args, name=STUDENT_FILES[DISTILLED])
    # Built before any training, so a seed gives the same students with or without the baseline.
    hard_student = make_student(*args, name=STUDENT_FILES[HARD_LABELS])[0] if s.hard_labels_baseline else None
    origin = f"from teacher layers {layer_map}" if layer_map is not None else "random init (narrower than the teacher)"
    _log(f"student: {student.backbone.num_layers} layers {origin}, {student.count_params():,} parameters")
    try:
        distiller = Distiller(
            teacher, student, alpha=s.alpha, temperature=s.temperature, hidden_cosine_weight=s.hidden_cosine_weight,
            hidden_mse_weight=s.hidden_mse_weight, attention_weight=s.attention_weight,
            layer_map=layer_map if layer_map is not None else s.layer_map,
            output_comparison=task.distill_comparison(),
        )
    except ValueError as error:
        raise RunError(f"cannot distil: {error}") from None
    fit = dict(run_dir=run_dir, config=config, epoch_variable=epoch, epochs=s.student_epochs,
               learning_rate=s.student_learning_rate)
    models, train_times = [(TEACHER_MODEL, teacher), (DISTILLED, student)], {}
    began = time.time()
    histories[DISTILLED] = fit_model(task, distiller, distill_ds, dev_ds, steps_per_epoch=distill_steps,
                                     name=STUDENT_FILES[DISTILLED], distiller=True, **fit)
    train_times[DISTILLED] = time.time() - began
    if hard_student is not None:
        began = time.time()
        histories[HARD_LABELS] = fit_model(task, hard_student, train_ds, dev_ds, steps_per_epoch=steps,
                                           name=STUDENT_FILES[HARD_LABELS], **fit)
        train_times[HARD_LABELS] = time.time() - began
        models.append((HARD_LABELS, hard_student))
    rows = []
    for label, model in models:
        if model is not teacher:
            model.save(os.path.join(run_dir, "models", f"{model.name}.keras"))
        rows.append(task.model_row(label, model, task.score(model, dev, tokenizer, config.data.batch_size),
                                   tokenizer))
        if label in train_times:
            rows[-1]["train_time_s"] = train_times[label]
    summary = task.summary(rows)
    why = ""
    if hard_student is not None:  # the lesson compares the twins; the teacher's pass over train is for it
        why = distillation_lesson(
            rows, task.main_metric, train_examples=len(train), augmented=augmented,
            from_teacher_layers=layer_map is not None,
            disagreements=task.label_disagreements(teacher, train, tokenizer, config.data.batch_size))
    from tfdistil import report as reporting

    reporting.plot_training_curves(histories, os.path.join(run_dir, "training_curves.png"))
    task.write_plots(run_dir, rows, student, dev, tokenizer, config.data.batch_size)
    return {
        "summary": summary,
        "why": why,
        "layer_map": list(layer_map) if layer_map is not None else None,
        "augmented_examples": augmented,
        "models": rows,
        "histories": {name: history_lists(h) for name, h in histories.items()},
        "plots": ["training_curves.png", *task.plots],
    }


# ----------------------------------------------------------------------------- evaluate, predict


def evaluate(run_dir, data, model=None, batch_size=32, output=None, **data_settings):
    """The task's scores of a run's saved model on a labelled file. `data_settings` (text_column,
    label_column, tag_column, ...) default to the run's own. Writes the result as JSON to `output`
    (default RUN_DIR/evaluation_<model>_<file>.json) and returns it with its path as `output`."""
    check_run_dir(run_dir)
    task = get_task(run_task(run_dir))
    recorded = run_config(run_dir)
    settings = {k: recorded[k] for k in ("text_column", "text_pair_column", "label_column", "tag_column",
                                         *task.data_settings) if k in recorded}
    settings.update({k: v for k, v in data_settings.items() if v is not None})
    label_names = load_run_label_names(run_dir)
    tokenizer = load_run_tokenizer(run_dir)
    data_ = task.read(data, RunConfig.from_flat(settings).data, label_names=label_names)
    task = task.for_data(data_)
    name, model_ = load_run_model(run_dir, model)
    if output is None:
        stem = os.path.splitext(os.path.basename(str(data)))[0]
        output = os.path.join(run_dir, f"evaluation_{name}_{stem}.json")
    result = {"run": str(run_dir), "model": name, "data": str(data),
              **task.evaluate(name, model_, data_, tokenizer, batch_size, output)}
    write_json(output, result)
    result["output"] = output
    return result


def predict(run_dir, lines, model=None, batch_size=32):
    """`tfdistil predict`: one printable line per input line, by the run's task."""
    check_run_dir(run_dir)
    task = get_task(run_task(run_dir))
    inputs = task.parse_inputs(lines, run_config(run_dir))
    label_names = load_run_label_names(run_dir)
    tokenizer = load_run_tokenizer(run_dir)
    _, model_ = load_run_model(run_dir, model)
    return task.predict(model_, tokenizer, label_names, inputs, batch_size)


def _as_config(config):
    if isinstance(config, RunConfig):
        return config
    if isinstance(config, dict):
        return RunConfig.from_flat(config)
    raise TypeError(f"expected a RunConfig or a dict of settings, got {type(config).__name__}")


def embedded_config(**settings):
    """The embedded default run (README's quick start, `tfdistil distill` with no data flags): a
    BERT teacher trained from scratch on the sentiment data shipped in the package, then a student
    with half its layers. `settings` (flat names) change any part of it."""
    from tfdistil.data.sentiment import sentiment_dataset_path
    from tfdistil.jobs.config import DISTILL_DEFAULTS, EMBEDDED_DEFAULTS

    values = dict(DISTILL_DEFAULTS, **EMBEDDED_DEFAULTS)
    values.update(train=str(sentiment_dataset_path("train")), dev=str(sentiment_dataset_path("dev")))
    values.update(settings)
    return RunConfig.from_flat(values)
