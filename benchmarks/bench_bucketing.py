"""One SST-2 training epoch with length bucketing + per-batch padding vs fixed padding to 128.

Trains the same small TextClassifier (bert_mini size by default) for one epoch on SST-2's
training sentences twice, from the same initial weights and with the same batch size:

    bucketed: make_classification_dataset(..., bucket_boundaries=(16, 32, 64, 128))
    fixed:    make_classification_dataset(..., bucket_boundaries=None)   # every batch 128 wide

Both runs compute every padded position, as tfdistil trains by default: that is the
comparison the issue names. Two more epochs run the same datasets with padding skipped in
training too (`tfdistil.layers.skip_padding(training=True)`, opt-in: encoder blocks compute
only the real tokens of batches with at most 80% of them; `bucketed_skip`, `fixed_128_skip`),
to show what skipping adds and what bucketing adds on top of it.

It reports, for each, the wall time of the epoch (first steps included: tracing and
compiling each new batch shape), the steady-state steps/s (steps after the first
`--warmup-steps` of the epoch, which is where retracing for new shapes happens), and the
tokens processed: real tokens vs padded positions the model computed on. The issue's target
is bucketed/fixed speed-up >= 3x.

Usage: python benchmarks/bench_bucketing.py [--data-dir ../shared/data] [--limit N]
       [--batch-size 32] [--preset bert_mini] [--precision mixed_bfloat16]
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, SHARED_DATA, benchmark_vocabulary  # noqa: E402
from tfdistil.data import make_classification_dataset, read_glue_tsv  # noqa: E402
from tfdistil.layers import skip_padding  # noqa: E402
from tfdistil.models import BertBackbone, TextClassifier  # noqa: E402
from tfdistil.jobs.pipeline import count_batches  # noqa: E402
from tfdistil.text import WordPieceTokenizer  # noqa: E402
from tfdistil.training import make_optimizer  # noqa: E402

SEQUENCE_LENGTH = 128
BOUNDARIES = (16, 32, 64, 128)


class StepTimer(keras.callbacks.Callback):
    """Wall time of every training batch (host side: the step includes waiting for data)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def token_counts(dataset):
    """(batches, real tokens, positions computed) over one pass of `dataset`."""
    batches = real = positions = 0
    for features, _ in dataset:
        mask = features["padding_mask"].numpy()
        batches += 1
        real += int(mask.sum())
        positions += int(mask.size)
    return batches, real, positions


def run_epoch(name, dataset, initial_weights, args, vocab_size, skip):
    keras.utils.set_random_seed(args.seed)
    backbone = BertBackbone.from_preset(
        args.preset, vocabulary_size=vocab_size, max_sequence_length=SEQUENCE_LENGTH
    )
    model = TextClassifier(backbone, num_classes=2, name=f"model_{name}")
    model.set_weights(initial_weights)
    steps = count_batches(dataset)
    model.compile(
        optimizer=make_optimizer(5e-4, steps),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    timer = StepTimer()
    start = time.perf_counter()
    with skip_padding(model, "always" if skip else "inference"):  # read when fit traces the train step
        history = model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=[timer])
    epoch_s = time.perf_counter() - start
    steady = timer.times[args.warmup_steps:]
    return {
        "epoch_wall_time_s": epoch_s,
        "steps": len(timer.times),
        "steps_per_s_total": len(timer.times) / epoch_s,
        "steady_state_steps": len(steady),
        "steady_state_steps_per_s": len(steady) / sum(steady) if steady else float("nan"),
        "first_step_s": timer.times[0],
        "train_loss": float(history.history["loss"][-1]),
        "train_accuracy": float(history.history["accuracy"][-1]),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=str(SHARED_DATA),
                        help="folder holding sst2/train.tsv (default: ../shared/data next to the repo)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use the first N training sentences (default: all 67,349)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--preset", default="bert_mini")
    parser.add_argument("--precision", default="mixed_bfloat16",
                        choices=["float32", "mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--vocabulary-size", type=int, default=8000,
                        help="size of the learned vocabulary when the checkpoint's is not installed")
    parser.add_argument("--warmup-steps", type=int, default=20,
                        help="steps at the start of each epoch left out of the steady-state rate")
    parser.add_argument("--no-skip-padding-epochs", action="store_true",
                        help="time only the two epochs the issue compares (not the skip_padding ones)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(RESULTS / "bucketing.json"))
    args = parser.parse_args(argv)

    data = read_glue_tsv(os.path.join(args.data_dir, "sst2", "train.tsv"))
    if args.limit is not None:
        data = type(data)(
            texts=data.texts[: args.limit], labels=data.labels[: args.limit], label_names=data.label_names,
            path=data.path, text_pairs=None,
        )
    keras.config.set_dtype_policy(args.precision)
    vocab, vocab_source = benchmark_vocabulary(data.texts, args.vocabulary_size)
    tokenizer = WordPieceTokenizer(vocab, sequence_length=SEQUENCE_LENGTH, pad_to_sequence_length=False)
    print(f"{len(data)} sentences, vocabulary {vocab_source} ({len(vocab)} tokens), {args.preset}, "
          f"{args.precision}, batch {args.batch_size}")

    datasets = {
        "bucketed": make_classification_dataset(
            data, tokenizer, args.batch_size, shuffle=True, seed=args.seed, bucket_boundaries=BOUNDARIES,
            log_truncation=False,
        ),
        "fixed_128": make_classification_dataset(
            data, tokenizer, args.batch_size, shuffle=True, seed=args.seed, bucket_boundaries=None,
            log_truncation=False,
        ),
    }
    keras.utils.set_random_seed(args.seed)
    reference = TextClassifier(
        BertBackbone.from_preset(args.preset, vocabulary_size=len(vocab), max_sequence_length=SEQUENCE_LENGTH),
        num_classes=2,
    )
    initial_weights = reference.get_weights()
    del reference

    results = {}
    runs = [(name, ds, False) for name, ds in datasets.items()]
    if not args.no_skip_padding_epochs:
        runs += [(f"{name}_skip", ds, True) for name, ds in datasets.items()]
    for name, ds, skip in runs:
        batches, real, positions = token_counts(ds)
        row = run_epoch(name, ds, initial_weights, args, len(vocab), skip)
        row.update(batches=batches, real_tokens=real, positions_computed=positions,
                   padding_fraction=1 - real / positions, skip_padding=skip)
        results[name] = row
        print(f"{name:>10}: {row['epoch_wall_time_s']:.1f} s/epoch, {row['steps_per_s_total']:.2f} steps/s total, "
              f"{row['steady_state_steps_per_s']:.2f} steps/s steady, {real:,} real tokens / {positions:,} "
              f"positions ({row['padding_fraction']:.0%} padding{', skipped where <= 80% real' if skip else ''})")

    b, f = results["bucketed"], results["fixed_128"]
    summary = {
        "speedup_epoch_wall_time": f["epoch_wall_time_s"] / b["epoch_wall_time_s"],
        "speedup_steady_state": b["steady_state_steps_per_s"] / f["steady_state_steps_per_s"],
        "positions_ratio_fixed_over_bucketed": f["positions_computed"] / b["positions_computed"],
        "target_speedup": 3.0,
    }
    summary["meets_target_epoch"] = summary["speedup_epoch_wall_time"] >= 3.0
    print(f"speed-up: {summary['speedup_epoch_wall_time']:.2f}x epoch wall time, "
          f"{summary['speedup_steady_state']:.2f}x steady state (target >= 3x); fixed padding computes "
          f"{summary['positions_ratio_fixed_over_bucketed']:.2f}x the positions")
    if "bucketed_skip" in results:
        bs, fs = results["bucketed_skip"], results["fixed_128_skip"]
        # padding skipped in training (opt-in) against the same computing every position
        summary.update(
            speedup_skip_padding_fixed_128=f["epoch_wall_time_s"] / fs["epoch_wall_time_s"],
            speedup_skip_padding_bucketed=b["epoch_wall_time_s"] / bs["epoch_wall_time_s"],
            speedup_bucketing_when_skipping=fs["epoch_wall_time_s"] / bs["epoch_wall_time_s"],
        )
        print(f"skipping padding: {summary['speedup_skip_padding_fixed_128']:.2f}x (fixed 128), "
              f"{summary['speedup_skip_padding_bucketed']:.2f}x (bucketed); bucketing when skipping: "
              f"{summary['speedup_bucketing_when_skipping']:.2f}x")
    out = {
        "benchmark": "bench_bucketing",
        "sentences": len(data),
        "limit": args.limit,
        "batch_size": args.batch_size,
        "preset": args.preset,
        "precision": args.precision,
        "vocabulary": vocab_source,
        "vocabulary_size": len(vocab),
        "sequence_length": SEQUENCE_LENGTH,
        "bucket_boundaries": list(BOUNDARIES),
        "warmup_steps": args.warmup_steps,
        "results": results,
        "summary": summary,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "tensorflow": tf.__version__, "keras": keras.__version__},
    }
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
