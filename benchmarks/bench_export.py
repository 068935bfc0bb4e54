"""Exports compared on real data: Keras vs SavedModel vs TFLite float32/float16/int8.

A small classifier is trained with `tfdistil.jobs.finetune` (bert_tiny size from scratch,
a learned 8,000-token WordPiece vocabulary; or `--hf PATH`, a local pretrained checkpoint)
on the first 5,000 SST-2 train sentences for 3 epochs, or taken from a run folder (`--run`). Each export is then evaluated on all 872 SST-2
dev sentences:

    size on disk, median latency at batch 1 and 32 (model only, on token ids padded to the
    run's sequence length), dev accuracy, and agreement of predictions with the SavedModel
    (issue target for int8: >= 99%).

The SavedModel also gets its end-to-end latency (raw text in, tokenizer inside) and the
Python-side tokenizer is timed alone, since TFLite clients tokenize outside the model.

Usage: python benchmarks/bench_export.py [--run RUN_DIR] [--data-dir ../shared/data/sst2]
           [--train-examples 5000] [--repeats 100] [--threads 2]
"""
import argparse
import json
import os
import shutil
import tempfile
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (ops of the SavedModel's in-graph tokenizer)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, SHARED_DATA, path_size_bytes  # noqa: E402
from tfdistil.data import read_glue_tsv  # noqa: E402
from tfdistil.evaluation import median_seconds  # noqa: E402
from tfdistil.export import TFLiteClassifier, export_saved_model, export_tflite  # noqa: E402
from tfdistil.jobs import RunConfig, finetune, load_run_label_names, load_run_model  # noqa: E402
from tfdistil.jobs import load_run_tokenizer  # noqa: E402
from tfdistil.text import WordPieceTokenizer  # noqa: E402

DEFAULT_DATA = SHARED_DATA / "sst2"
OUTPUT = RESULTS / "export.json"
INT8_AGREEMENT_TARGET = 0.99


def median_ms(fn, repeats, warmup=5):
    return median_seconds(fn, repeats, warmup) * 1000.0


def train_run(data_dir, work, train_examples, sequence_length, seed, epochs, learning_rate, hf=None):
    """A bert_tiny run trained from scratch (or `hf` fine-tuned) on the first `train_examples`
    SST-2 sentences."""
    train_file = work / "train.tsv"
    with open(data_dir / "train.tsv", encoding="utf-8") as f:
        lines = f.readlines()[: train_examples + 1]  # header + examples
    train_file.write_text("".join(lines), encoding="utf-8")
    config = RunConfig.from_flat(
        train=str(train_file), dev=str(data_dir / "dev.tsv"), hf=hf, preset=None if hf else "bert_tiny",
        vocabulary_size=8000, name="sst2_tiny", runs_dir=str(work / "runs"), teacher_epochs=epochs, batch_size=32,
        teacher_learning_rate=learning_rate, sequence_length=sequence_length, precision="float32", patience=1,
        seed=seed, verbose=2,
    )
    report = finetune(config)
    return work / "runs" / "sst2_tiny", report


def batches(inputs, size):
    n = len(inputs["token_ids"])
    for i in range(0, n, size):
        yield {k: v[i: i + size] for k, v in inputs.items()}


def predict_all(fn, inputs, batch_size=32):
    return np.concatenate([np.asarray(fn(b)) for b in batches(inputs, batch_size)])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None, help="run folder to export (default: train one)")
    parser.add_argument("--model", default=None, help="model of --run (default: the run's default)")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="folder of SST-2 train.tsv and dev.tsv")
    parser.add_argument("--train-examples", type=int, default=5000)
    parser.add_argument("--sequence-length", type=int, default=64, help="of the trained run (not with --run)")
    # 3 epochs, not 1: after one epoch from scratch the tiny model still predicts one class for
    # every dev sentence (50.9% accuracy), and "int8 agrees with SavedModel" would be trivially 100%.
    parser.add_argument("--epochs", type=int, default=3, help="of the trained run (not with --run)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="of the trained run (not with --run)")
    parser.add_argument("--hf", default=None, metavar="PATH",
                        help="fine-tune this local Hugging Face BERT folder instead of bert_tiny from scratch")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2, help="TFLite interpreter threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args()

    start = time.time()
    data_dir = Path(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="bench_export-"))
    try:
        train_report = None
        if args.run is None:
            run_dir, train_report = train_run(
                data_dir, work, args.train_examples, args.sequence_length, args.seed, args.epochs, args.learning_rate,
                args.hf)
        else:
            run_dir = Path(args.run)
        model_name, model = load_run_model(str(run_dir), args.model)
        run_tokenizer = load_run_tokenizer(str(run_dir))
        label_names = load_run_label_names(str(run_dir))
        seq = run_tokenizer.sequence_length
        # Fixed-length padding: the TFLite files take (batch, seq); Keras and SavedModel get the
        # same ids (padding is masked, so their logits do not depend on it).
        tokenizer = WordPieceTokenizer(run_tokenizer.get_vocabulary(), lowercase=run_tokenizer.lowercase,
                                       strip_accents=run_tokenizer.strip_accents, sequence_length=seq,
                                       pad_to_sequence_length=True)
        dev = read_glue_tsv(data_dir / "dev.tsv", label_names=label_names)
        labels = np.asarray(dev.labels)
        inputs = {k: np.asarray(v) for k, v in tokenizer(tf.constant(dev.texts)).items()}
        one = {k: v[:1] for k, v in inputs.items()}
        thirty_two = {k: v[:32] for k, v in inputs.items()}

        # ---- exports
        keras_path = run_dir / "models" / f"{model_name}.keras"
        sm_version = export_saved_model(model, run_tokenizer, work / "saved_models" / "sst2", label_names=label_names)
        loaded = tf.saved_model.load(str(sm_version))
        sm_logits = loaded.signatures["logits"]
        sm_text = loaded.signatures["serving_default"]
        tflite_paths = {q: export_tflite(model, work / f"sst2_{q}.tflite", quantize=q, sequence_length=seq)
                        for q in ("float32", "float16", "int8")}

        # ---- runners: dict of int32 arrays -> logits
        @tf.function(reduce_retracing=True)
        def keras_forward(x):
            return model(x, training=False)

        runners = {
            "keras": (keras_path, lambda x: keras_forward({k: tf.constant(v) for k, v in x.items()})),
            "saved_model": (sm_version, lambda x: sm_logits(**{k: tf.constant(v) for k, v in x.items()})["logits"]),
        }
        for q, path in tflite_paths.items():
            runners[f"tflite_{q}"] = (path, TFLiteClassifier(path, num_threads=args.threads))

        rows = {}
        for name, (path, fn) in runners.items():
            logits = predict_all(fn, inputs)
            rows[name] = {
                "size_bytes": path_size_bytes(path),
                "latency_b1_ms": median_ms(lambda: fn(one), args.repeats),
                "latency_b32_ms": median_ms(lambda: fn(thirty_two), max(args.repeats // 5, 10)),
                "accuracy": float(np.mean(logits.argmax(-1) == labels)),
                "predictions": logits.argmax(-1),
                "logits": logits,
            }
        reference = rows["saved_model"]
        for name, row in rows.items():
            row["agreement_with_saved_model"] = float(np.mean(row["predictions"] == reference["predictions"]))
            row["max_abs_logit_diff_vs_saved_model"] = float(np.max(np.abs(row["logits"] - reference["logits"])))
        tokenize = tf.function(lambda texts: tokenizer(texts))  # what a TFLite client runs first
        texts_1 = tf.constant(dev.texts[:1])
        texts_32 = tf.constant(dev.texts[:32])
        extra = {
            "saved_model_text_to_probabilities_b1_ms": median_ms(lambda: sm_text(text=texts_1), args.repeats),
            "saved_model_text_to_probabilities_b32_ms": median_ms(lambda: sm_text(text=texts_32), 20),
            "tokenizer_alone_b1_ms": median_ms(lambda: tokenize(texts_1), args.repeats),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)

    int8_agreement = rows["tflite_int8"]["agreement_with_saved_model"]
    print()
    print(f"run: {'trained here' if args.run is None else run_dir}, model {model_name}, "
          f"{model.count_params():,} parameters, sequence length {seq}, {len(labels)} SST-2 dev sentences")
    header = f"{'export':<16}{'size MB':>9}{'b1 ms':>9}{'b32 ms':>9}{'accuracy':>10}{'agree w/ SM':>13}{'max |dlogit|':>14}"
    print(header)
    print("-" * len(header))
    for name, row in rows.items():
        print(f"{name:<16}{row['size_bytes'] / 1e6:>9.2f}{row['latency_b1_ms']:>9.2f}{row['latency_b32_ms']:>9.2f}"
              f"{row['accuracy']:>10.4f}{row['agreement_with_saved_model']:>13.4f}"
              f"{row['max_abs_logit_diff_vs_saved_model']:>14.2e}")
    for key, value in extra.items():
        print(f"{key}: {value:.2f}")
    verdict = "meets" if int8_agreement >= INT8_AGREEMENT_TARGET else "MISSES"
    print(f"int8 agreement with SavedModel {int8_agreement:.2%}: {verdict} the {INT8_AGREEMENT_TARGET:.0%} target")

    result = {
        "benchmark": "bench_export",
        "tensorflow": tf.__version__,
        "run": "trained here" if args.run is None else str(run_dir),
        "model": model_name,
        "parameters": int(model.count_params()),
        "sequence_length": seq,
        "dev_examples": int(len(labels)),
        "train": None if train_report is None else {
            "train_examples": train_report["train_examples"], "source": os.path.basename(os.path.normpath(args.hf)) if args.hf else "bert_tiny from scratch",
            "vocabulary_size": run_tokenizer.vocabulary_size(), "dev_accuracy": train_report["dev_accuracy"],
            "epochs": args.epochs, "learning_rate": args.learning_rate,
            "wall_time_s": train_report["wall_time_s"],
        },
        "tflite_threads": args.threads,
        "latency": "median over --repeats calls, model only, on token ids padded to sequence_length",
        "exports": {name: {k: v for k, v in row.items() if k not in ("predictions", "logits")}
                    for name, row in rows.items()},
        **extra,
        "int8_agreement_target": INT8_AGREEMENT_TARGET,
        "int8_meets_target": bool(int8_agreement >= INT8_AGREEMENT_TARGET),
        "wall_time_s": time.time() - start,
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.output} ({result['wall_time_s']:.0f} s)")


if __name__ == "__main__":
    main()
