"""tfdistil against KerasHub and Hugging Face PyTorch on this machine, side by side in one process.

Inference latency/throughput (tfdistil graph mode and XLA, KerasHub, transformers PyTorch eager),
training-step throughput (tfdistil vs KerasHub classifiers), model FLOPs utilisation against the
matmul peak measured in the same run, the distilbert_base / bert_base speed-up, and one SST-2
epoch bucketed vs padded to 128 (bench_bucketing.py). Prints markdown tables, writes
benchmarks/results/peers.json and the README section benchmarks/results/peers.md. The logic
lives in benchmarks/peers.py.

Needs the bench extra:  pip install -e ".[bench]"

Usage: python benchmarks/bench_peers.py [--quick] [--models bert_base,distilbert_base,bert_mini]
       [--seq 128,64] [--batch 1,8,32] [--policies float32,mixed_bfloat16] [--rounds 3]
       [--libraries tfdistil,tfdistil_xla,tfdistil_xla_ln,tfdistil_cast,tfdistil_cast_xla_ln,keras_hub,torch]
       [--torch-skip bert_base:32] ...
       python benchmarks/bench_peers.py --rederive benchmarks/results/peers.json --markdown benchmarks/results/peers.md
"""
import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
from common import command  # noqa: E402


def _names(text):
    return tuple(x for x in text.split(",") if x)


def _ints(text):
    return tuple(int(x) for x in text.split(",") if x)


def _parser():
    defaults = peers.PeerOptions()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smoke run (bert_mini, seq 64, batch 1,8, one round, no SST-2 "
                   "epoch); other flags still override it")
    p.add_argument("--models", type=_names, help=f"presets to time (default: {','.join(defaults.models)})")
    p.add_argument("--seq", type=_ints, help="sequence lengths (default: 128,64)")
    p.add_argument("--batch", type=_ints, help="batch sizes (default: 1,8,32)")
    p.add_argument("--policies", type=_names, help="float32,mixed_bfloat16 (default: both)")
    p.add_argument("--libraries", type=_names, help="inference rows among tfdistil,tfdistil_xla,tfdistil_xla_ln,"
                   "tfdistil_cast,tfdistil_cast_xla_ln,keras_hub,keras_hub_xla,torch (default: all but keras_hub_xla; "
                   "tfdistil_xla_ln = the opt-in XLA LayerNorm path, tfdistil_cast = weights cast to bfloat16 once "
                   "(tfdistil.layers.WeightCasts), timed under mixed_bfloat16 only)")
    p.add_argument("--torch-autocast", action="store_true", help="also time PyTorch under bfloat16 autocast for "
                   "mixed_bfloat16 (default: PyTorch in float32 only)")
    p.add_argument("--torch-skip", type=_names, help="model:batch pairs PyTorch is not timed at, e.g. bert_base:32")
    p.add_argument("--rounds", type=int, help="interleaved timing rounds; the median is kept (default: 3)")
    p.add_argument("--repeats", type=int, help="timed calls per library per round (default: 1)")
    p.add_argument("--warmup", type=int, help="untimed calls before timing (default: 2)")
    p.add_argument("--train-models", type=_names, help="presets whose classifier training step is timed "
                   "(default: the --models; 'none' for no training)")
    p.add_argument("--train-batch", type=int, help="training batch size (default: 16)")
    p.add_argument("--train-seq", type=int, help="training sequence length (default: 128)")
    p.add_argument("--train-libraries", type=_names, help="tfdistil,tfdistil_keras_adamw,keras_hub (add "
                   "tfdistil_xla,keras_hub_xla for XLA; tfdistil_keras_adamw = tfdistil's model stepped by "
                   "keras.optimizers.AdamW instead of tfdistil's)")
    p.add_argument("--train-rounds", type=int, help="training timing rounds (default: 3)")
    p.add_argument("--bucketing-limit", type=int, help="SST-2 sentences for the bucketing epoch "
                   "(default: all 67,349, ~14 min for both epochs; 0 skips it)")
    p.add_argument("--data-dir", help="folder holding sst2/train.tsv and dev.tsv (default: ../shared/data next to "
                   "the repo)")
    p.add_argument("--real-sentences", type=int, help="SST-2 dev sentences for the padded-batch inference rows "
                   f"(default: {defaults.real_sentences}; 0 skips them)")
    p.add_argument("--real-batch", type=_ints, help="batch sizes of those rows (default: 8,32)")
    p.add_argument("--real-model", help="the model of those rows (default: bert_base)")
    p.add_argument("--output", help=f"JSON (default: {defaults.output})")
    p.add_argument("--markdown", help=f"README section (default: {defaults.markdown})")
    p.add_argument("--rederive", metavar="JSON", help="time nothing: re-derive the ratios, MFU and targets of an "
                   "earlier --output JSON from its timed rows, rewrite it, and write --markdown from it")
    return p


def parse(argv=None):
    return _options(_parser().parse_args(argv), argv)


def _options(args, argv):
    chosen = {
        "models": args.models, "sequence_lengths": args.seq, "batch_sizes": args.batch, "policies": args.policies,
        "libraries": args.libraries, "torch_skip": args.torch_skip, "rounds": args.rounds, "repeats": args.repeats,
        "warmup": args.warmup, "train_batch_size": args.train_batch, "train_sequence_length": args.train_seq,
        "train_libraries": args.train_libraries, "train_rounds": args.train_rounds,
        "bucketing_limit": args.bucketing_limit, "bucketing_data_dir": args.data_dir,
        "real_sentences": args.real_sentences, "real_batch_sizes": args.real_batch,
        "real_model": args.real_model, "output": args.output,
        "markdown": args.markdown,
    }
    if args.torch_autocast:
        chosen["torch_autocast"] = True
    if args.train_models is not None:
        chosen["train_models"] = () if args.train_models == ("none",) else args.train_models
    elif args.models is not None:
        chosen["train_models"] = args.models
    chosen = {k: v for k, v in chosen.items() if v is not None}
    chosen["command"] = command("bench_peers.py", argv)
    return peers.PeerOptions.quick(**chosen) if args.quick else peers.PeerOptions(**chosen)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.rederive:
        result = peers.rederive(args.rederive, args.markdown)
        print(result["markdown"])
        print(f"rewrote {args.rederive}" + (f" and {args.markdown}" if args.markdown else "") + " from its timed rows")
        return
    options = _options(args, argv)
    print("options:", {k: v for k, v in dataclasses.asdict(options).items() if k != "command"}, flush=True)
    result = peers.run_peers(options)
    print()
    print(result["markdown"])
    print(f"wrote {options.output} and {options.markdown} ({result['wall_time_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
