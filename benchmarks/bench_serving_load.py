"""Serving under load: N threads calling one loaded SavedModel's `serving_default` until R
requests (or M seconds) are done.

A bert_tiny-size classifier (random weights: speed does not depend on them) is exported with
`export_saved_model` and loaded with `tf.saved_model.load`, as a Python client or a server would.
Each request is a batch of raw SST-2 dev sentences (the shipped sentiment data when the shared
data is missing), taken in turn. Recorded: requests/s over the timed requests, p50 / p99 latency
(nearest rank), errors (an exception, or probabilities of the wrong shape, not finite or not
summing to 1: must be 0), and the process's resident memory (VmRSS) after the warm-up and at the
end, with samples between: its growth over the run must stay under `--rss-bound-mb`.

Usage: python benchmarks/bench_serving_load.py [--threads 4] [--requests 10000] [--seconds 0]
           [--batch 1] [--preset bert_tiny] [--sequence-length 64] [--rss-bound-mb 50]
Writes benchmarks/results/serving_load.json.
"""
import argparse
import itertools
import json
import math
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, SHARED_DATA, command  # noqa: E402


def percentile(values, q):
    """The nearest-rank q-th percentile: the smallest value with at least q% of the values at or
    below it (`values` need not be sorted; q in (0, 100])."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(latencies_s, errors, wall_s, rss_start_bytes, rss_end_bytes, rss_bound_mb):
    """The result's numbers from the raw measurements: requests/s (every timed request, failed
    ones too, over the wall time), p50/p99/max latency in ms, errors, RSS in MB and its growth,
    and whether it stayed within the bound."""
    mb = 1024 * 1024
    growth = (rss_end_bytes - rss_start_bytes) / mb
    return {
        "requests": len(latencies_s),
        "errors": errors,
        "wall_s": wall_s,
        "requests_per_s": len(latencies_s) / wall_s,
        "p50_ms": percentile(latencies_s, 50) * 1000,
        "p99_ms": percentile(latencies_s, 99) * 1000,
        "max_ms": max(latencies_s) * 1000,
        "rss_start_mb": rss_start_bytes / mb,
        "rss_end_mb": rss_end_bytes / mb,
        "rss_growth_mb": growth,
        "rss_bound_mb": rss_bound_mb,
        "rss_within_bound": growth <= rss_bound_mb,
    }


def rss_bytes():
    """This process's resident set size (Linux /proc)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def sentences():
    """SST-2 dev sentences (872), else the shipped sentiment data's texts."""
    path = SHARED_DATA / "sst2" / "dev.tsv"
    if path.is_file():
        from tfdistil.data import read_glue_tsv

        return read_glue_tsv(path).texts, "SST-2 dev"
    from tfdistil.data import load_sentiment_dataset

    return load_sentiment_dataset("dev").texts, "tfdistil sentiment dev"


def export_model(preset, sequence_length, texts, folder):
    """A randomly initialised `preset` classifier and its tokenizer, exported to `folder`."""
    import keras

    from common import benchmark_vocabulary
    from tfdistil.export import export_saved_model
    from tfdistil.models import BertBackbone, TextClassifier
    from tfdistil.text import WordPieceTokenizer

    keras.utils.set_random_seed(0)
    vocabulary, source = benchmark_vocabulary(texts)
    tokenizer = WordPieceTokenizer(vocabulary, sequence_length=sequence_length)
    backbone = BertBackbone.from_preset(preset, vocabulary_size=len(vocabulary),
                                        max_sequence_length=sequence_length)
    model = TextClassifier(backbone, num_classes=2)
    version = export_saved_model(model, tokenizer, Path(folder) / "model", allow_untrained=True)
    return version, source, int(model.count_params())


def run_load(serve, batches, threads, requests, seconds):
    """Call `serve` from `threads` threads on `batches` in turn until `requests` calls are done
    (or `seconds` pass, when > 0). Returns (latencies in s, errors, wall time, RSS samples)."""
    counter, lock = itertools.count(), threading.Lock()
    latencies, errors, samples = [], [0], []
    deadline = None

    def worker():
        while True:
            with lock:
                i = next(counter)
            if i >= requests or (deadline is not None and time.perf_counter() > deadline):
                return
            batch = batches[i % len(batches)]
            start = time.perf_counter()
            try:
                probabilities = serve(text=batch)["probabilities"].numpy()
                ok = (probabilities.shape == (batch.shape[0], 2) and np.isfinite(probabilities).all()
                      and np.allclose(probabilities.sum(axis=-1), 1, atol=1e-5))
            except Exception:  # noqa: BLE001 - any failure of a request is an error to count
                ok = False
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok
                if len(latencies) % 1000 == 0:
                    samples.append((len(latencies), rss_bytes()))

    start = time.perf_counter()
    if seconds > 0:
        deadline = start + seconds
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, errors[0], time.perf_counter() - start, samples


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=0, help="stop after this many seconds too (0: no limit)")
    parser.add_argument("--batch", type=int, default=1, help="sentences a request")
    parser.add_argument("--preset", default="bert_tiny")
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=200, help="untimed requests before RSS is first read")
    parser.add_argument("--rss-bound-mb", type=float, default=50.0)
    parser.add_argument("--output", default=str(RESULTS / "serving_load.json"))
    args = parser.parse_args(argv)

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's tokenizer ops)

    texts, data = sentences()
    with tempfile.TemporaryDirectory() as folder:
        version, vocabulary, parameters = export_model(args.preset, args.sequence_length, texts, folder)
        serve = tf.saved_model.load(str(version)).signatures["serving_default"]
        batches = [tf.constant(texts[i:i + args.batch]) for i in range(0, len(texts) - args.batch + 1, args.batch)]
        warm_latencies, warm_errors, _, _ = run_load(serve, batches, args.threads, args.warmup, 0)
        rss_start = rss_bytes()
        latencies, errors, wall, samples = run_load(serve, batches, args.threads, args.requests, args.seconds)
        rss_end = rss_bytes()
    summary = summarize(latencies, errors + warm_errors, wall, rss_start, rss_end, args.rss_bound_mb)
    result = {
        "command": command("bench_serving_load.py", argv),
        "model": {"preset": args.preset, "parameters": parameters, "sequence_length": args.sequence_length,
                  "vocabulary": vocabulary, "weights": "random (speed does not depend on them)"},
        "load": {"threads": args.threads, "requests": args.requests, "seconds": args.seconds, "batch": args.batch,
                 "warmup_requests": args.warmup, "texts": data},
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
                    "tensorflow": tf.__version__, "python": platform.python_version()},
        "rss_samples_mb": [[n, b / 1024 / 1024] for n, b in samples],
        **summary,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{summary['requests']} requests, {args.threads} threads, batch {args.batch}: "
          f"{summary['requests_per_s']:.0f} requests/s, p50 {summary['p50_ms']:.2f} ms, "
          f"p99 {summary['p99_ms']:.2f} ms, errors {summary['errors']}, RSS {summary['rss_start_mb']:.0f} -> "
          f"{summary['rss_end_mb']:.0f} MB (growth {summary['rss_growth_mb']:+.1f} MB, bound {args.rss_bound_mb} MB)")
    return 0 if summary["errors"] == 0 and summary["rss_within_bound"] else 1


if __name__ == "__main__":
    sys.exit(main())
