"""Named-entity recognition jobs on CoNLL-style files: `finetune_ner` a TokenClassifier
teacher, `distill_ner` a DistilBERT student from it (and the same student on hard labels for
comparison), scored entity by entity with seqeval.

Files are read with `tfdistil.data.read_conll` (``TOKEN TAG [extra ...]`` a line, blank line
between sentences). A word's prediction is the model's prediction at the word's first word
piece (`align_predictions`); words cut off by truncation are predicted "O", so a truncated
entity counts as missed. Scores are seqeval's default (CoNLL-2000 `conlleval`) entity
matching: precision, recall and F1 over all entities ("micro avg") and per entity type.

Run folders are laid out as the classification jobs' (`tfdistil.jobs.runs`):

    <run_dir>/config.json vocab.txt tokenizer.json label_names.json
    <run_dir>/models/model.keras                     (finetune_ner)
    <run_dir>/models/student_{distilled,hard_labels}.keras   (distill_ner)
    <run_dir>/report.json report.md
"""
import os
import time
import warnings

import keras
import numpy as np

from tfdistil import evaluation
from tfdistil.data import (
    IGNORE_INDEX, TokenClassificationData, align_predictions, make_token_classification_dataset, read_conll,
    train_and_dev_datasets,
)
from tfdistil.distillation import Distiller, init_student_from_teacher
from tfdistil.jobs.classification import HF_LEARNING_RATE, SCRATCH_LEARNING_RATE
from tfdistil.jobs.teacher import build_teacher, check_teacher_source
from tfdistil.jobs.runs import (
    RunError,
    check_run_dir,
    load_run_label_names,
    load_run_model,
    load_run_tokenizer,
    run_config,
    save_run_label_names,
    save_run_tokenizer,
    write_json,
)
from tfdistil.models import DistilBertBackbone, TokenClassifier
from tfdistil.recipes import count_batches, history_lists
from tfdistil.training import fit_run, make_optimizer, precision_scope

FINETUNE_MODEL = "model"
OVERALL = "micro avg"  # seqeval's name for the scores over all entities


# ----------------------------------------------------------------------------- evaluation


def entity_types(label_names):
    """Entity types of BIO/IOBES tags ("B-PER", "I-LOC" -> PER, LOC), in first-seen order."""
    types = []
    for name in label_names:
        if name != "O" and "-" in name:
            kind = name.split("-", 1)[1]
            if kind not in types:
                types.append(kind)
    return types


def predict_word_tags(model, data, tokenizer, batch_size=32):
    """Predicted tag strings of every word of `data`, one list per sentence (truncated words "O").

    The dataset is built unbucketed and unshuffled so that its rows are `data`'s sentences in
    order; each word takes the argmax at its first word piece."""
    ds = make_token_classification_dataset(data, tokenizer, batch_size, bucket_boundaries=None,
                                           log_truncation=False)
    predictions = []
    infer = evaluation.inference_function(model)
    for x, y in ds:
        logits = np.asarray(infer(x))  # (batch, seq, classes)
        predictions.extend(align_predictions(np.argmax(logits, axis=-1), np.asarray(y)))
    if len(predictions) != len(data):
        raise RuntimeError(f"{len(predictions)} predicted rows for {len(data)} sentences")
    names = data.label_names
    tags = []
    for words, ids in zip(data.sentences, predictions):
        row = [names[int(i)] for i in ids]
        tags.append(row + ["O"] * (len(words) - len(row)))
    return tags


def seqeval_scores(true_tags, pred_tags, types):
    """seqeval's classification report as {type or "micro avg": {precision, recall, f1, support}};
    every type in `types` is present (zeros when neither gold nor predictions have it)."""
    from seqeval.metrics import classification_report

    report = classification_report(true_tags, pred_tags, output_dict=True, zero_division=0)
    scores = {}
    for key in [*types, *(k for k in report if k not in types)]:
        row = report.get(key, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        scores[key] = {"precision": float(row["precision"]), "recall": float(row["recall"]),
                       "f1": float(row["f1-score"]), "support": int(row["support"])}
    return scores


def evaluate_ner(model, data, tokenizer, batch_size=32):
    """Entity-level scores of `model` on `data` (see `seqeval_scores`)."""
    pred = predict_word_tags(model, data, tokenizer, batch_size)
    return seqeval_scores(data.tags, pred, entity_types(data.label_names))


def evaluate_ner_run(run_dir, data, model=None, tag_column=None, batch_size=32, output=None):
    """Entity-level precision/recall/F1 (seqeval) of a tagger run's saved model on a CoNLL file.
    `tag_column` defaults to the one the run was trained with. Writes JSON to `output` (default
    RUN_DIR/evaluation_<model>_<file>.json) and returns it."""
    if tag_column is None:
        tag_column = run_config(run_dir).get("tag_column", 1)
    label_names = load_run_label_names(run_dir)
    tokenizer = load_run_tokenizer(run_dir)
    dev = read_conll(data, label_names=label_names, tag_column=tag_column)
    name, model_ = load_run_model(run_dir, model)
    scores = evaluate_ner(model_, dev, tokenizer, batch_size)
    overall = scores[OVERALL]
    result = {"run": str(run_dir), "model": name, "data": str(data), "sentences": len(dev),
              "precision": overall["precision"], "recall": overall["recall"], "f1": overall["f1"],
              "per_type": {t: scores[t] for t in entity_types(label_names)}}
    if output is None:
        stem = os.path.splitext(os.path.basename(str(data)))[0]
        output = os.path.join(run_dir, f"evaluation_{name}_{stem}.json")
    write_json(output, result)
    result["output"] = output
    return result


def predict_ner_run(run_dir, texts, model=None, batch_size=32):
    """The tag of each word (whitespace-separated) of each text by a tagger run's saved model:
    one list of (word, tag) a text, in input order."""
    label_names = load_run_label_names(run_dir)
    tokenizer = load_run_tokenizer(run_dir)
    _, model_ = load_run_model(run_dir, model)
    sentences = [text.split() for text in texts]
    data = TokenClassificationData(sentences=sentences, tags=[["O"] * len(s) for s in sentences],
                                   label_names=list(label_names), path="<predict>")
    tags = predict_word_tags(model_, data, tokenizer, batch_size)
    return [list(zip(words, row)) for words, row in zip(sentences, tags)]


# ----------------------------------------------------------------------------- reports


def _model_row(name, model, scores, types):
    overall = scores[OVERALL]
    return {
        "model": name,
        "parameters": int(model.count_params()),
        "num_layers": int(model.backbone.num_layers),
        "precision": overall["precision"],
        "recall": overall["recall"],
        "f1": overall["f1"],
        "per_type": {t: scores[t] for t in types},
        "seqeval": scores,
    }


def _markdown(report):
    types = report["entity_types"]
    lines = [f"# NER run `{report['name']}`", "", report.get("summary", ""), "",
             "Entity-level scores on the dev set (seqeval, CoNLL matching): precision / recall / F1.", ""]
    head = ["model", "parameters", "overall P", "overall R", "overall F1"]
    for t in types:
        head += [f"{t} P", f"{t} R", f"{t} F1"]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in report["models"]:
        cells = [row["model"], f"{row['parameters']:,}",
                 f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}"]
        for t in types:
            s = row["per_type"][t]
            cells += [f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    support = report["models"][0]["per_type"]
    lines += ["", "Dev entities: " + ", ".join(f"{t} {support[t]['support']}" for t in types)
              + f". Dev sentences: {report['dev_sentences']}. Precision policy: `{report['precision_policy']}`. "
              f"Wall time: {report['wall_time_s']:.0f} s.", ""]
    return "\n".join(lines)


def _write_report(run_dir, report):
    write_json(os.path.join(run_dir, "report.json"), report)
    with open(os.path.join(run_dir, "report.md"), "w", encoding="utf-8") as f:
        f.write(_markdown(report))


# ----------------------------------------------------------------------------- training


def _token_loss():
    # -100 marks later word pieces, [CLS]/[SEP] and padding: no loss there.
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_INDEX)


def _fit_tagger(model, train_ds, dev_ds, epochs, steps, learning_rate, run_dir, name, verbose, patience,
                epoch_variable=None):
    # Keras' "accuracy" would count -100 positions, so plain taggers early-stop on dev loss.
    model.compile(optimizer=make_optimizer(learning_rate, epochs * steps), loss=_token_loss())
    with warnings.catch_warnings():
        # A BERT backbone's pooler feeds no token logits: it gets no gradient, as expected.
        warnings.filterwarnings("ignore", message=r"Gradients do not exist for variables \['pooler/")
        history = fit_run(model, train_ds, dev_ds, epochs=epochs, run_dir=run_dir, name=name, patience=patience,
                          monitor="val_loss", mode="min", epoch_variable=epoch_variable, verbose=verbose)
    return history_lists(history.history)


def _json_settings(values):
    return {k: (os.fspath(v) if isinstance(v, os.PathLike) else v) for k, v in values.items()}


def _read_ner(train_path, dev_path, tag_column, label_names=None):
    train = read_conll(train_path, label_names=label_names, tag_column=tag_column)
    dev = read_conll(dev_path, label_names=train.label_names, tag_column=tag_column)
    return train, dev


def finetune_ner(train_path, dev_path, run_dir, *, hf=None, preset=None, vocabulary=None, vocabulary_size=1000,
                 num_layers=None, tag_column=1, epochs=3, batch_size=32, learning_rate=None, sequence_length=128,
                 precision="auto", patience=2, seed=0, verbose=2):
    """Train a TokenClassifier teacher on a CoNLL file, from a Hugging Face folder (`hf`) or a
    preset size at random init (`preset`, with `vocabulary` or a vocabulary of `vocabulary_size`
    learned from the training words), early-stopped on dev loss (best weights restored).

    Writes `run_dir` (config.json, models/model.keras, vocab.txt, tokenizer.json,
    label_names.json, report.json/md) and returns the report: seqeval scores on `dev_path`."""
    check_teacher_source(hf, preset, vocabulary)
    settings = _json_settings(locals())
    start = time.time()
    train, dev = _read_ner(train_path, dev_path, tag_column)
    types = entity_types(train.label_names)
    os.makedirs(os.path.join(run_dir, "models"), exist_ok=True)
    keras.utils.set_random_seed(seed)
    with precision_scope(precision) as (policy, reason):
        print(f"[tfdistil] data: {len(train)} train / {len(dev)} dev sentences, tags {train.label_names}")
        model, tokenizer = build_teacher(
            "token_classification", train.num_classes, [" ".join(words) for words in train.sentences], hf=hf,
            preset=preset, vocabulary=vocabulary, vocabulary_size=vocabulary_size, num_layers=num_layers,
            sequence_length=sequence_length,
        )
        if learning_rate is None:
            learning_rate = HF_LEARNING_RATE if hf is not None else SCRATCH_LEARNING_RATE
        write_json(os.path.join(run_dir, "config.json"),
                   dict(settings, task="ner", train=str(train_path), dev=str(dev_path), run_dir=str(run_dir),
                        learning_rate=learning_rate, resolved_precision=policy))
        save_run_tokenizer(tokenizer, run_dir)
        save_run_label_names(train.label_names, run_dir)
        print(f"[tfdistil] tagger: {type(model.backbone).__name__} with {model.backbone.num_layers} layers, "
              f"{model.count_params():,} parameters")
        train_ds, dev_ds, epoch = train_and_dev_datasets(make_token_classification_dataset, train, dev, tokenizer,
                                                         batch_size, seed)
        history = _fit_tagger(model, train_ds, dev_ds, epochs, count_batches(train_ds), learning_rate, run_dir,
                              FINETUNE_MODEL, verbose, patience, epoch)
        model.save(os.path.join(run_dir, "models", f"{FINETUNE_MODEL}.keras"))
        scores = evaluate_ner(model, dev, tokenizer, batch_size)
    row = _model_row(FINETUNE_MODEL, model, scores, types)
    report = {
        "name": os.path.basename(os.path.normpath(run_dir)),
        "task": "ner",
        "summary": f"Tagger dev entity F1 {row['f1']:.3f} (P {row['precision']:.3f}, R {row['recall']:.3f}).",
        "source": {"hf": hf} if hf is not None else {"preset": preset},
        "label_names": list(train.label_names),
        "entity_types": types,
        "train_sentences": len(train),
        "dev_sentences": len(dev),
        "models": [row],
        "precision_policy": policy,
        "precision_reason": reason,
        "histories": {FINETUNE_MODEL: history},
        "wall_time_s": time.time() - start,
    }
    _write_report(run_dir, report)
    print(f"[tfdistil] {report['summary']} run: {run_dir}")
    return report


def distill_ner(teacher_run_dir, train_path, dev_path, run_dir, *, student_layers=None, tag_column=1,
                epochs=3, batch_size=32, learning_rate=5e-4, alpha=0.5, temperature=2.0,
                hidden_cosine_weight=1.0, hard_labels_baseline=True, precision="auto", patience=None, seed=0,
                verbose=2):
    """Distil a DistilBERT TokenClassifier student (initialised from the teacher's layers,
    default layer map) from the tagger in `teacher_run_dir` on a CoNLL file, train the same
    student on hard labels alone (unless `hard_labels_baseline` is false), and score teacher and
    students with seqeval on `dev_path`. Writes `run_dir` (models/student_distilled.keras,
    models/student_hard_labels.keras, report.json/md, ...; each student's row has its training
    time, `train_time_s`) and returns the report."""
    settings = _json_settings(locals())
    start = time.time()
    check_run_dir(teacher_run_dir)
    label_names = load_run_label_names(teacher_run_dir)
    tokenizer = load_run_tokenizer(teacher_run_dir)
    train, dev = _read_ner(train_path, dev_path, tag_column, label_names=label_names)
    types = entity_types(label_names)
    teacher_name, teacher = load_run_model(teacher_run_dir)
    if not isinstance(teacher, TokenClassifier):
        raise RunError(f"{teacher_run_dir}: model {teacher_name!r} is a {type(teacher).__name__}, not a tagger "
                       "(TokenClassifier); fine-tune one with `tfdistil finetune --task ner`")
    t_bb = teacher.backbone
    student_layers = student_layers or max(t_bb.num_layers // 2, 1)
    if not 1 <= student_layers <= t_bb.num_layers:
        raise RunError(f"--student-layers {student_layers}: must be between 1 and the teacher's "
                       f"{t_bb.num_layers} layers")
    os.makedirs(os.path.join(run_dir, "models"), exist_ok=True)
    keras.utils.set_random_seed(seed)
    with precision_scope(precision) as (policy, reason):
        write_json(os.path.join(run_dir, "config.json"),
                   dict(settings, task="ner", teacher_run_dir=str(teacher_run_dir), train=str(train_path),
                        dev=str(dev_path), run_dir=str(run_dir), student_layers=student_layers,
                        resolved_precision=policy))
        save_run_tokenizer(tokenizer, run_dir)
        save_run_label_names(label_names, run_dir)
        print(f"[tfdistil] data: {len(train)} train / {len(dev)} dev sentences; teacher {teacher_name}: "
              f"{t_bb.num_layers} layers, {teacher.count_params():,} parameters")

        def make_student(name):
            backbone = DistilBertBackbone(
                vocabulary_size=t_bb.vocabulary_size, num_layers=student_layers, num_heads=t_bb.num_heads,
                hidden_dim=t_bb.hidden_dim, intermediate_dim=t_bb.intermediate_dim,
                max_sequence_length=tokenizer.sequence_length,
            )
            student = TokenClassifier(backbone, num_classes=len(label_names), name=name)
            return student, init_student_from_teacher(student, teacher)

        student, layer_map = make_student("student_distilled")
        # Built before any training, so a seed gives the same students with or without the baseline.
        hard_student = make_student("student_hard_labels")[0] if hard_labels_baseline else None
        print(f"[tfdistil] student: {student_layers} layers from teacher layers {layer_map}, "
              f"{student.count_params():,} parameters")
        train_ds, dev_ds, epoch = train_and_dev_datasets(make_token_classification_dataset, train, dev, tokenizer,
                                                         batch_size, seed)
        steps = count_batches(train_ds)
        distiller = Distiller(teacher, student, alpha=alpha, temperature=temperature,
                              hidden_cosine_weight=hidden_cosine_weight, layer_map=layer_map)
        # The Distiller's accuracy skips -100 labels and padding (it masks the logits).
        distiller.compile(optimizer=make_optimizer(learning_rate, epochs * steps), metrics=["accuracy"])
        train_times = {}
        began = time.time()
        h = fit_run(distiller, train_ds, dev_ds, epochs=epochs, run_dir=run_dir, name="student_distilled",
                    patience=patience, epoch_variable=epoch, verbose=verbose)
        train_times["student (distilled)"] = time.time() - began
        histories = {"student (distilled)": history_lists(h.history)}
        models = [("teacher", teacher), ("student (distilled)", student)]
        if hard_student is not None:
            began = time.time()
            histories["student (hard labels)"] = _fit_tagger(
                hard_student, train_ds, dev_ds, epochs, steps, learning_rate, run_dir, "student_hard_labels",
                verbose, patience, epoch,
            )
            train_times["student (hard labels)"] = time.time() - began
            models.append(("student (hard labels)", hard_student))
        rows = []
        for label, model in models:
            if model is not teacher:
                model.save(os.path.join(run_dir, "models", f"{model.name}.keras"))
            rows.append(_model_row(label, model, evaluate_ner(model, dev, tokenizer, batch_size), types))
            if label in train_times:
                rows[-1]["train_time_s"] = train_times[label]
    teacher_f1, distilled_f1 = rows[0]["f1"], rows[1]["f1"]
    versus = f" vs hard labels only {rows[2]['f1']:.3f}" if len(rows) > 2 else ""
    report = {
        "name": os.path.basename(os.path.normpath(run_dir)),
        "task": "ner",
        "summary": (f"Dev entity F1: teacher {teacher_f1:.3f}; student distilled {distilled_f1:.3f}{versus}; "
                    f"student has {rows[1]['parameters'] / rows[0]['parameters']:.0%} of the "
                    "teacher's parameters."),
        "teacher_run": str(teacher_run_dir),
        "label_names": list(label_names),
        "entity_types": types,
        "layer_map": list(layer_map),
        "train_sentences": len(train),
        "dev_sentences": len(dev),
        "models": rows,
        "precision_policy": policy,
        "precision_reason": reason,
        "histories": histories,
        "wall_time_s": time.time() - start,
    }
    _write_report(run_dir, report)
    print(f"[tfdistil] {report['summary']} report: {os.path.join(run_dir, 'report.md')}")
    return report


__all__ = ["finetune_ner", "distill_ner", "evaluate_ner", "predict_word_tags", "seqeval_scores", "entity_types"]
