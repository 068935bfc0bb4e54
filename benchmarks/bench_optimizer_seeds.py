"""The quick start's teacher trained with tfdistil's AdamW update (one fused
`ResourceApplyAdam` per variable) and with Keras' own AdamW update, seed by seed.

Both arms of a seed start from the same weights and see the same batches (`keras.utils.set_random_seed`
before each); the updates agree to float rounding (tests/test_training.py), so what differs
is rounding, and a from-scratch teacher on ~3,000 sentences amplifies it. The question is
whether the fused kernel trains worse on average, which a few seeds cannot tell.

    python benchmarks/bench_optimizer_seeds.py --seeds 0-23

Each finished (seed, update) is written at once, and a rerun skips those already in the
output file. `--summarize` only recomputes the summary of the rows on file.
"""
import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, RESULTS, parse_seeds  # noqa: E402

sys.path.insert(0, str(REPO_ROOT))


def sign_test_p(wins, losses):
    """Two-sided sign test (ties dropped)."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def summarize(rows):
    by_seed = {}
    for row in rows:
        by_seed.setdefault(row["seed"], {})[row["update"]] = row
    seeds = sorted(s for s, arms in by_seed.items() if len(arms) == 2)
    if len(seeds) < 2:
        return {"paired_seeds": len(seeds)}
    diffs = [by_seed[s]["fused"]["best_val_accuracy"] - by_seed[s]["keras"]["best_val_accuracy"] for s in seeds]
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    wins, losses = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    summary = {
        "paired_seeds": len(seeds),
        "mean_difference_fused_minus_keras": mean,
        "sd_of_differences": sd,
        "paired_t": mean / (sd / math.sqrt(len(seeds))) if sd > 0 else float("nan"),
        "fused_better": wins, "keras_better": losses, "ties": len(seeds) - wins - losses,
        "sign_test_p": sign_test_p(wins, losses),
    }
    for update in ("fused", "keras"):
        accs = [by_seed[s][update]["best_val_accuracy"] for s in seeds]
        summary[update] = {"mean": statistics.mean(accs), "sd": statistics.stdev(accs),
                           "median": statistics.median(accs), "min": min(accs), "max": max(accs)}
    return summary


def train_teacher(seed, update, update_step, vocab, train, dev, config, run_dir):
    import keras

    from tfdistil.data import make_classification_dataset, train_and_dev_datasets
    from tfdistil.jobs.pipeline import count_batches, fit_model
    from tfdistil.models import BertBackbone, TextClassifier
    from tfdistil.tasks import get_task
    from tfdistil.text import WordPieceTokenizer
    from tfdistil.training import optimization

    # `update_step`: Keras' update for every variable, or tfdistil's own (restored by `main`).
    optimization.AdamW.update_step = update_step
    keras.utils.set_random_seed(seed)
    data, t = config.data, config.teacher
    tokenizer = WordPieceTokenizer(vocab, sequence_length=data.sequence_length, pad_to_sequence_length=False)
    train_ds, dev_ds, epoch = train_and_dev_datasets(make_classification_dataset, train, dev, tokenizer,
                                                     data.batch_size, seed)
    backbone = BertBackbone.from_preset(t.preset, vocabulary_size=len(vocab), max_sequence_length=data.sequence_length,
                                        num_layers=t.teacher_num_layers)
    teacher = TextClassifier(backbone, num_classes=train.num_classes, name="teacher")
    start = time.time()
    history = fit_model(get_task("classification"), teacher, train_ds, dev_ds, epochs=t.teacher_epochs,
                        steps_per_epoch=count_batches(train_ds), learning_rate=t.teacher_learning_rate,
                        run_dir=run_dir, name="teacher", config=config, epoch_variable=epoch)
    return {
        "seed": seed, "update": update, "best_val_accuracy": float(max(history["val_accuracy"])),
        "epochs": len(history["val_accuracy"]), "final_train_loss": float(history["loss"][-1]),
        "val_accuracy": [float(v) for v in history["val_accuracy"]], "seconds": time.time() - start,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0-23", help="seeds, e.g. 0-23 or 0,3,5 (default: 0-23)")
    parser.add_argument("--output", default=str(RESULTS / "optimizer_seeds.json"))
    parser.add_argument("--summarize", action="store_true", help="only recompute the summary of the rows on file")
    args = parser.parse_args(argv)

    result = {"rows": []}
    if os.path.exists(args.output):
        with open(args.output, encoding="utf-8") as f:
            result = json.load(f)
    if not args.summarize:
        import keras

        from tfdistil.data import load_sentiment_dataset
        from tfdistil.jobs import embedded_config
        from tfdistil.text import learn_vocabulary
        from tfdistil.training import optimization, precision_scope

        updates = {"fused": optimization.AdamW.update_step, "keras": keras.optimizers.AdamW.update_step}
        config = embedded_config(verbose=0)
        train, dev = load_sentiment_dataset("train"), load_sentiment_dataset("dev")
        vocab = learn_vocabulary(train.texts, config.teacher.vocabulary_size, progress=False)
        done = {(r["seed"], r["update"]) for r in result["rows"]}
        try:
            with precision_scope(config.training.precision) as (policy, _), tempfile.TemporaryDirectory() as tmp:
                result["policy"] = policy
                for seed in parse_seeds(args.seeds):
                    # Alternate which update runs first in the process, in case order mattered.
                    order = ("fused", "keras") if seed % 2 == 0 else ("keras", "fused")
                    for update in order:
                        if (seed, update) in done:
                            continue
                        row = train_teacher(seed, update, updates[update], vocab, train, dev, config,
                                            os.path.join(tmp, f"{seed}_{update}"))
                        result["rows"].append(row)
                        result["summary"] = summarize(result["rows"])
                        with open(args.output, "w", encoding="utf-8") as f:
                            json.dump(result, f, indent=1)
                        print(f"seed {seed:3d} {update:5s} dev accuracy {row['best_val_accuracy']:.3f} "
                              f"({row['epochs']} epochs, {row['seconds']:.0f} s)", flush=True)
        finally:
            optimization.AdamW.update_step = updates["fused"]
    result["summary"] = summarize(result["rows"])
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
