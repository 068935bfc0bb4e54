"""The peer benchmark behind `benchmarks/bench_peers.py`: tfdistil against KerasHub and Hugging Face
PyTorch, side by side in one process on this machine.

What is measured (every ratio is between timings taken in the same run):

- inference latency and throughput of tfdistil (graph mode, and XLA), KerasHub's
  `BertBackbone` / `DistilBertBackbone` of the same size and dtype policy, and `transformers`'
  `BertModel` / `DistilBertModel` in PyTorch eager mode on CPU, all fed the same random token ids;
- a training step (`train_on_batch`, the step `fit` runs) of a two-class classifier, tfdistil's
  `TextClassifier` against KerasHub's `BertTextClassifier` / `DistilBertTextClassifier`, same
  loss and AdamW settings, each library's AdamW (tfdistil's fused one; Keras' for KerasHub, and
  for the "tfdistil, Keras AdamW" row);
- the machine's matmul peak (`tf.matmul` of large square matrices, float32 and bfloat16, graph
  mode and XLA), and from it each row's model FLOPs utilisation (MFU);
- the student/teacher inference speed-up (`distilbert_base` against `bert_base`);
- one SST-2 epoch with length bucketing against fixed padding (`benchmarks/bench_bucketing.py`).

Timing: every callable is warmed up (tracing, compiling), then timed in rounds, one after the
other, the order rotated each round: all models and libraries of one (policy, seq, batch), plus
the float32 and bfloat16 peak matmuls, share the rounds, so that a machine shared with other jobs
slows them alike; a row's time is the median over rounds of `median_seconds`, and its MFU divides
by the peak matmul of the same rounds. Process CPU time (all threads) is kept too: it moves much
less than wall time when other processes compete for the cores.

FLOPs (`forward_flops`) count matrix products only, 2*m*n*k each: per layer the fused QKV
projection, the attention scores and the attention-weighted values, the output projection and the
two feed-forward products, plus BERT's pooler; embeddings, softmax, LayerNorm, GELU and biases
are not counted. A training step counts 3x the forward pass of the classifier (the backward pass
computes two products per forward product), the convention of the MFU literature. tfdistil's
`TextClassifier` computes only the [CLS] position in its last block (`first_token_savings`): its
training rows keep the model's FLOPs in `flops` (the same for every library) and what it computed
in `flops_computed`, from which its MFU is taken.
"""
import contextlib
import dataclasses
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import SHARED_DATA, benchmark_vocabulary
from tfdistil.evaluation import median_seconds
from tfdistil.models.presets import PRESET_ARCHITECTURE, preset_config
from tfdistil.report import markdown_table

LIBRARIES = ("tfdistil", "tfdistil_xla", "tfdistil_xla_ln", "tfdistil_cast", "tfdistil_cast_xla_ln", "keras_hub",
             "keras_hub_xla", "torch")
# Training rows: tfdistil steps with its own AdamW (`tfdistil.training.AdamW`, one fused kernel per
# variable), KerasHub with Keras' `keras.optimizers.AdamW`, as each library's users would;
# tfdistil_keras_adamw is tfdistil's model with Keras' optimizer, to show the two apart.
TRAIN_LIBRARIES = ("tfdistil", "tfdistil_keras_adamw", "tfdistil_xla", "keras_hub", "keras_hub_xla")
LIBRARY_TITLES = {"tfdistil": "tfdistil", "tfdistil_xla": "tfdistil XLA", "tfdistil_xla_ln": "tfdistil XLA LayerNorm",
                  "tfdistil_cast": "tfdistil weights cast once",
                  "tfdistil_cast_xla_ln": "tfdistil weights cast once + XLA LayerNorm",
                  "tfdistil_keras_adamw": "tfdistil, Keras AdamW",
                  "keras_hub": "KerasHub", "keras_hub_xla": "KerasHub XLA", "torch": "PyTorch"}
# tfdistil_xla_ln: the opt-in `tfdistil.layers.xla_layer_norm()` path, which only changes
# bfloat16/float16 inference; under float32 it is the plain tfdistil row and is not timed.
# tfdistil_cast: the projection weights cast to bfloat16 once (`tfdistil.layers.WeightCasts`, what
# an exported SavedModel of a mixed-policy model stores) instead of at every call; same outputs bit
# for bit; under float32 there is nothing to cast and it is not timed. tfdistil_cast_xla_ln: both.
MIXED_ONLY = ("tfdistil_xla_ln", "tfdistil_cast", "tfdistil_cast_xla_ln")
POLICIES = ("float32", "mixed_bfloat16")
# The headline shapes: where each target is read.
TARGET_SHAPE = dict(model="bert_base", sequence_length=128, batch_size=8)
TRAIN_TARGET_SHAPE = dict(model="bert_base", sequence_length=128, batch_size=16)
COMMAND = "python benchmarks/bench_peers.py"
# oneDNN, under TensorFlow's (and PyTorch's) CPU kernels, keeps its compiled kernels in a
# per-process LRU cache of 1,024 by default. The SST-2 dev batches, each padded to its longest
# sentence, bring ~30 new shapes per batch size for three models; cycling through more kernels
# than the cache holds recompiles every one on every call (measured, bert_base float32 batch 8:
# 10.8 s instead of 3.6 s, every library alike). Raised for the benchmark's process unless set;
# read by oneDNN when its cache is first used, so it is set on import, before any model runs.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "8192")


@dataclasses.dataclass
class PeerOptions:
    """What to measure. `torch_skip` holds "model:batch" pairs PyTorch is not timed at (its
    eager CPU path is the slowest here; dropping bert_base at batch 32 keeps a full run short)."""

    models: tuple = ("bert_base", "distilbert_base", "bert_mini")
    sequence_lengths: tuple = (128, 64)
    batch_sizes: tuple = (1, 8, 32)
    policies: tuple = POLICIES
    libraries: tuple = ("tfdistil", "tfdistil_xla", "tfdistil_xla_ln", "tfdistil_cast", "tfdistil_cast_xla_ln",
                        "keras_hub", "torch")
    torch_autocast: bool = False
    torch_skip: tuple = ()
    rounds: int = 3
    repeats: int = 1
    warmup: int = 2
    train_models: tuple = ("bert_base", "distilbert_base", "bert_mini")
    train_batch_size: int = 16
    train_sequence_length: int = 128
    train_libraries: tuple = ("tfdistil", "tfdistil_keras_adamw", "keras_hub")
    train_rounds: int = 3
    peak_sizes: tuple = (2048, 4096)
    peak_repeats: int = 3
    bucketing_limit: int = None
    bucketing_data_dir: str = None
    real_model: str = "bert_base"
    real_batch_sizes: tuple = (8, 32)
    real_sentences: int = 256
    seed: int = 0
    output: str = "benchmarks/results/peers.json"
    markdown: str = "benchmarks/results/peers.md"
    command: str = COMMAND

    @classmethod
    def quick(cls, **overrides):
        """A smoke run of a minute or two: bert_mini, short sequences, one round, no SST-2 epoch."""
        settings = dict(models=("bert_mini",), sequence_lengths=(64,), batch_sizes=(1, 8), rounds=1, warmup=1,
                        train_models=("bert_mini",), train_batch_size=8, train_sequence_length=64, train_rounds=1,
                        peak_sizes=(1024,), peak_repeats=2, bucketing_limit=0, real_sentences=0,
                        command=f"{COMMAND} --quick")
        settings.update(overrides)
        return cls(**settings)

    def validate(self):
        unknown = [m for m in (*self.models, *self.train_models) if m not in PRESET_ARCHITECTURE]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {sorted(PRESET_ARCHITECTURE)}")
        bad = [p for p in self.policies if p not in POLICIES]
        if bad:
            raise ValueError(f"unknown policy {bad}; choose from {list(POLICIES)}")
        bad = [lib for lib in self.libraries if lib not in LIBRARIES]
        if bad:
            raise ValueError(f"unknown library {bad}; choose from {list(LIBRARIES)}")
        bad = [lib for lib in self.train_libraries if lib not in TRAIN_LIBRARIES]
        if bad:
            raise ValueError(f"unknown training library {bad}; choose from {list(TRAIN_LIBRARIES)} (training is "
                             "compared between tfdistil and KerasHub only; the XLA LayerNorm path is for inference)")
        if min(self.batch_sizes + (self.train_batch_size,)) < 1 or min(self.rounds, self.repeats, self.train_rounds) < 1:
            raise ValueError("batch sizes, rounds and repeats must be >= 1")
        for pair in self.torch_skip:
            model, _, batch = pair.partition(":")
            if not batch.isdigit():
                raise ValueError(f"torch_skip entries are 'model:batch', got {pair!r}")


# --------------------------------------------------------------------------- FLOPs


def forward_flops(config, architecture, batch_size, sequence_length):
    """Matmul FLOPs of one backbone forward pass (2*m*n*k per product).

    With t = batch * seq tokens, h = hidden_dim, i = intermediate_dim, per layer:
      fused QKV projection   2*t*h*3h
      scores  Q K^T           2*batch*heads*seq*seq*(h/heads) = 2*batch*seq^2*h
      context P V             2*batch*seq^2*h
      output projection       2*t*h*h
      feed-forward            2*t*h*i + 2*t*i*h
    that is t*(8h^2 + 4hi) + 4*batch*seq^2*h, times num_layers; BERT adds its pooler,
    2*batch*h*h. Embedding lookups, softmax, LayerNorm, GELU and bias adds are not counted.
    """
    h, i, layers = config["hidden_dim"], config["intermediate_dim"], config["num_layers"]
    tokens = batch_size * sequence_length
    per_layer = tokens * (8 * h * h + 4 * h * i) + 4 * batch_size * sequence_length ** 2 * h
    pooler = 2 * batch_size * h * h if architecture == "bert" else 0
    return layers * per_layer + pooler


def classifier_head_flops(config, architecture, batch_size, num_classes=2):
    """The classifier on top of the backbone: Dense(num_classes), after DistilBERT's
    Dense(hidden) pre-classifier."""
    h = config["hidden_dim"]
    pre = 2 * batch_size * h * h if architecture == "distilbert" else 0
    return pre + 2 * batch_size * h * num_classes


def first_token_savings(config, batch_size, sequence_length):
    """Matmul FLOPs a [CLS] classifier's last block does not compute when it computes the first
    position only (tfdistil's `TextClassifier`, `Backbone.first_token_model`): of the last
    layer's t*(8h^2 + 4hi) + 4*batch*seq^2*h it keeps the key and value projections of every
    token, 4*t*h^2, and for one position per sequence the query and output projections, the
    feed-forward and its attention, batch*(4h^2 + 4hi + 4*seq*h)."""
    h, i = config["hidden_dim"], config["intermediate_dim"]
    tokens = batch_size * sequence_length
    last_layer = tokens * (8 * h * h + 4 * h * i) + 4 * batch_size * sequence_length ** 2 * h
    kept = 4 * tokens * h * h + batch_size * (4 * h * h + 4 * h * i + 4 * sequence_length * h)
    return last_layer - kept


def training_flops(config, architecture, batch_size, sequence_length, num_classes=2, first_token=False):
    """3x the classifier's forward pass: the backward pass is two products per forward product.
    `first_token`: what a classifier whose last block computes [CLS] only does compute."""
    forward = forward_flops(config, architecture, batch_size, sequence_length)
    if first_token:
        forward -= first_token_savings(config, batch_size, sequence_length)
    return 3 * (forward + classifier_head_flops(config, architecture, batch_size, num_classes))


# --------------------------------------------------------------------------- models


def model_config(preset):
    return preset_config(preset, PRESET_ARCHITECTURE[preset])


@contextlib.contextmanager
def dtype_policy(policy):
    """Build under `policy` (layers made without an explicit dtype take the global one);
    the caller's policy comes back after."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def build_tfdistil(preset, policy):
    from tfdistil.models import BertBackbone, DistilBertBackbone

    cls = BertBackbone if PRESET_ARCHITECTURE[preset] == "bert" else DistilBertBackbone
    with dtype_policy(policy):
        return cls.from_preset(preset, dtype=policy)


def build_keras_hub(preset, policy):
    """KerasHub's backbone with the preset's sizes (randomly initialised, nothing downloaded)."""
    import keras_hub

    config = model_config(preset)
    sizes = {k: config[k] for k in ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
                                    "dropout", "max_sequence_length")}
    with dtype_policy(policy):
        if PRESET_ARCHITECTURE[preset] == "bert":
            return keras_hub.models.BertBackbone(num_segments=config["num_segments"], dtype=policy, **sizes)
        return keras_hub.models.DistilBertBackbone(dtype=policy, **sizes)


def build_torch(preset):
    """`transformers`' BertModel / DistilBertModel of the preset's sizes, in eval mode."""
    import transformers

    c = model_config(preset)
    if PRESET_ARCHITECTURE[preset] == "bert":
        hf_config = transformers.BertConfig(
            vocab_size=c["vocabulary_size"], hidden_size=c["hidden_dim"], num_hidden_layers=c["num_layers"],
            num_attention_heads=c["num_heads"], intermediate_size=c["intermediate_dim"],
            max_position_embeddings=c["max_sequence_length"], type_vocab_size=c["num_segments"],
            hidden_act="gelu", layer_norm_eps=1e-12,
        )
        return transformers.BertModel(hf_config).eval()
    hf_config = transformers.DistilBertConfig(
        vocab_size=c["vocabulary_size"], dim=c["hidden_dim"], n_layers=c["num_layers"], n_heads=c["num_heads"],
        hidden_dim=c["intermediate_dim"], max_position_embeddings=c["max_sequence_length"], activation="gelu",
    )
    return transformers.DistilBertModel(hf_config).eval()


def build_classifier(library, preset, policy, num_classes=2):
    """A two-class sequence classifier on a fresh backbone: tfdistil's TextClassifier or KerasHub's
    Bert/DistilBertTextClassifier (the same head: BERT's pooled [CLS] -> dropout -> Dense;
    DistilBERT's [CLS] -> Dense(hidden, relu) -> dropout -> Dense)."""
    if library == "tfdistil":
        from tfdistil.models import TextClassifier

        backbone = build_tfdistil(preset, policy)
        with dtype_policy(policy):
            return TextClassifier(backbone, num_classes)
    import keras_hub

    backbone = build_keras_hub(preset, policy)
    cls = (keras_hub.models.BertTextClassifier if PRESET_ARCHITECTURE[preset] == "bert"
           else keras_hub.models.DistilBertTextClassifier)
    with dtype_policy(policy):
        return cls(backbone, num_classes, preprocessor=None)


def torch_parameter_count(model):
    return int(sum(p.numel() for p in model.parameters()))


# --------------------------------------------------------------------------- inputs and callables


def make_inputs(vocabulary_size, batch_size, sequence_length, seed=0):
    """The same random token ids for every library (numpy int32); no padding, one segment."""
    rng = np.random.default_rng(seed)
    return {
        "token_ids": rng.integers(1, vocabulary_size, (batch_size, sequence_length)).astype("int32"),
        "segment_ids": np.zeros((batch_size, sequence_length), "int32"),
        "padding_mask": np.ones((batch_size, sequence_length), "int32"),
    }


def keras_inputs(model, inputs):
    """The int32 tensors a Keras model takes (every model here has a dict of named inputs)."""
    import tensorflow as tf

    return {name: tf.constant(inputs[name]) for name in model.input}


def keras_forward(model, inputs, jit_compile, xla_layer_norm=False, weight_casts=None):
    """A no-argument callable: one inference call of a Keras model (tf.function, optionally
    XLA, or with tfdistil's XLA LayerNorm path, or reading a `tfdistil.layers.WeightCasts`'
    copies, traced here), its outputs brought to numpy so the timing includes the whole computation."""
    import contextlib

    import tensorflow as tf

    from tfdistil.layers import layer_norm

    x = keras_inputs(model, inputs)
    fn = tf.function(lambda feed: model(feed, training=False), jit_compile=jit_compile)
    with layer_norm.xla_layer_norm(model, xla_layer_norm), weight_casts or contextlib.nullcontext():
        fn.get_concrete_function(x)
    return lambda: tf.nest.map_structure(np.asarray, fn(x))


def keras_pass(model, batches, skip_padding=True):
    """A no-argument callable: one inference call of a Keras model on each of `batches` (dicts
    of int32 arrays of any (batch, seq)), traced once for every shape, with tfdistil's
    unpadded path on or off (`tfdistil.layers.skip_padding`; KerasHub ignores it)."""
    import tensorflow as tf

    from tfdistil.layers import encoder_block

    spec = {name: tf.TensorSpec((None, None), tf.int32) for name in model.input}
    fn = tf.function(lambda feed: model(feed, training=False), input_signature=[spec])
    with encoder_block.skip_padding(model, "inference" if skip_padding else "never"):
        fn.get_concrete_function()
    feeds = [keras_inputs(model, b) for b in batches]
    return lambda: [tf.nest.map_structure(np.asarray, fn(feed)) for feed in feeds]


def torch_forward(model, inputs, autocast=False, threads=None):
    """A no-argument callable: one eager PyTorch inference call with `threads` intra-op threads
    (default: PyTorch's own setting), under bfloat16 autocast if asked."""
    import torch

    feeds = {"input_ids": torch.from_numpy(inputs["token_ids"].astype(np.int64)),
             "attention_mask": torch.from_numpy(inputs["padding_mask"].astype(np.int64))}
    if model.config.model_type == "bert":
        feeds["token_type_ids"] = torch.from_numpy(inputs["segment_ids"].astype(np.int64))

    def call():
        default = torch.get_num_threads()
        torch.set_num_threads(threads or default)
        try:
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                return model(**feeds).last_hidden_state.float().numpy()
        finally:
            torch.set_num_threads(default)

    return call


def pick_torch_threads(model, inputs, autocast=False):
    """PyTorch's default is one OpenMP thread per core. When other processes use the cores too,
    its OpenMP barriers wait on descheduled threads and 2 threads can be 10-50x slower than 1
    (bert_mini, batch 1: 360 ms against 6 ms here). To compare with PyTorch at its best, each
    shape gets the faster of 1 thread and the default, chosen from one timed call of each after a
    warm-up call (which also serves as the timing's warm-up). Returns (threads, {threads: seconds})."""
    import torch

    candidates = sorted({1, torch.get_num_threads()})
    torch_forward(model, inputs, autocast)()
    seconds = {n: median_seconds(torch_forward(model, inputs, autocast, n), 1, warmup=0) for n in candidates}
    return min(seconds, key=seconds.get), seconds


def adamw(library):
    """AdamW at learning rate 1e-5 with Keras' other defaults (weight decay 0.004 on every
    weight): tfdistil's own (`tfdistil.training.AdamW`, the same update in one fused kernel per
    variable) for the tfdistil rows, Keras' for KerasHub and `tfdistil_keras_adamw`."""
    import keras

    if library.startswith("tfdistil") and library != "tfdistil_keras_adamw":
        from tfdistil.training import AdamW

        return AdamW(learning_rate=1e-5, exclude_from_weight_decay_names=())
    return keras.optimizers.AdamW(learning_rate=1e-5)


def train_step(model, inputs, labels, jit_compile, optimizer):
    """A no-argument callable: one `train_on_batch` (the step `fit` runs) with `optimizer` and
    sparse cross-entropy on logits."""
    import keras

    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=jit_compile)
    x = keras_inputs(model, inputs)
    return lambda: model.train_on_batch(x, labels, return_dict=True)


# --------------------------------------------------------------------------- timing


def _recording_cpu(fn, cpu_times):
    def call():
        start = time.process_time()
        fn()
        cpu_times.append(time.process_time() - start)

    return call


def time_interleaved(fns, rounds, repeats=1, warmup=2, warmed=()):
    """Time each callable of `fns` ({name: fn}) in `rounds` rounds, one after the other, the
    order rotated each round; callables named in `warmed` skip the `warmup` calls. Returns
    {name: {"seconds": median over rounds of the per-round median of `repeats` calls,
    "cpu_seconds": median process CPU time of a call, "rounds": [per-round seconds]}}."""
    for name, fn in fns.items():
        for _ in range(0 if name in warmed else warmup):
            fn()
    names = list(fns)
    per_round = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            per_round[name].append(median_seconds(_recording_cpu(fns[name], cpu[name]), repeats, warmup=0))
    return {n: {"seconds": float(np.median(per_round[n])), "cpu_seconds": float(np.median(cpu[n])),
                "rounds": per_round[n]} for n in names}


def matmul_fn(dtype, n, xla):
    """(callable, FLOPs): one (n, n) x (n, n) `tf.matmul` in `dtype`, reduced to a scalar (n^2
    additions against 2n^3 for the product, and no n x n copy back to numpy)."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n), seed=1), dtype)
    b = tf.cast(tf.random.normal((n, n), seed=2), dtype)
    fn = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)), jit_compile=xla)
    return (lambda: fn(a, b).numpy()), 2 * n ** 3


def matmul_peak(sizes=(2048, 4096), repeats=3):
    """The best FLOP/s of `tf.matmul` on square (n, n) matrices, float32 and bfloat16, in graph mode
    and under XLA; returns {dtype: {"flops_per_s", "n", "xla", "all": [...]}}."""
    result = {}
    for dtype in ("float32", "bfloat16"):
        trials = []
        for n in sizes:
            for xla in (False, True):
                fn, flops = matmul_fn(dtype, n, xla)
                seconds = median_seconds(fn, repeats, warmup=1)
                trials.append({"n": n, "xla": xla, "seconds": seconds, "flops_per_s": flops / seconds})
        best = max(trials, key=lambda t: t["flops_per_s"])
        result[dtype] = {"flops_per_s": best["flops_per_s"], "n": best["n"], "xla": best["xla"], "all": trials}
    return result


PEAK_NAMES = {"float32": "peak/float32", "bfloat16": "peak/bfloat16"}


def peak_callables(peak):
    """{name: (callable, FLOPs)}: the best matmul of each dtype found by `matmul_peak`, timed again
    inside every group of rows so each row's MFU is against the peak of the same moments."""
    return {PEAK_NAMES[d]: matmul_fn(d, p["n"], p["xla"]) for d, p in peak.items()}


def _with_peaks(fns, peaks):
    fns.update({name: fn for name, (fn, _) in peaks.items()})
    return fns


def _group_peaks(timings, peaks):
    return {d: peaks[name][1] / timings[name]["seconds"] for d, name in PEAK_NAMES.items()}


# --------------------------------------------------------------------------- runs


def _log(message):
    print(f"[peers {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _free():
    import keras

    gc.collect()
    keras.backend.clear_session()
    gc.collect()


def run_inference(options, peaks, log=_log):
    """Inference rows and the parameter counts of every library's model. All models and libraries
    of one (policy, seq, batch) are timed in the same interleaved rounds, with the matmul peaks,
    so that student/teacher ratios and MFU compare timings of the same moments."""
    rows, parameters = [], {}
    torch_skip = {tuple(p.split(":")) for p in options.torch_skip}
    torch_models = {}
    if "torch" in options.libraries:
        import torch

        torch.manual_seed(options.seed)
        for preset in options.models:
            torch_models[preset] = build_torch(preset)
            parameters.setdefault(preset, {})["torch"] = torch_parameter_count(torch_models[preset])
    for policy in options.policies:
        models, weight_casts = {}, {}
        for preset in options.models:
            counts = parameters.setdefault(preset, {})
            if {lib for lib in LIBRARIES if lib.startswith("tfdistil")} & set(options.libraries):
                models[preset, "tfdistil"] = build_tfdistil(preset, policy)
                counts["tfdistil"] = int(models[preset, "tfdistil"].count_params())
                if policy != "float32" and {"tfdistil_cast", "tfdistil_cast_xla_ln"} & set(options.libraries):
                    from tfdistil.layers import WeightCasts

                    weight_casts[preset] = WeightCasts(models[preset, "tfdistil"])
            if {"keras_hub", "keras_hub_xla"} & set(options.libraries):
                models[preset, "keras_hub"] = build_keras_hub(preset, policy)
                counts["keras_hub"] = int(models[preset, "keras_hub"].count_params())
        for seq in options.sequence_lengths:
            for batch in options.batch_sizes:
                fns, threads = {}, {}
                for preset in options.models:
                    inputs = make_inputs(model_config(preset)["vocabulary_size"], batch, seq, options.seed)
                    for lib in options.libraries:
                        name = f"{preset}/{lib}"
                        if lib == "torch":
                            if (policy != "float32" and not options.torch_autocast) or (preset, str(batch)) in torch_skip:
                                continue
                            autocast = policy != "float32"
                            threads[name] = pick_torch_threads(torch_models[preset], inputs, autocast)
                            fns[name] = torch_forward(torch_models[preset], inputs, autocast, threads[name][0])
                        elif lib in MIXED_ONLY:
                            if policy != "float32":
                                fns[name] = keras_forward(models[preset, "tfdistil"], inputs, False,
                                                          xla_layer_norm=lib.endswith("_xla_ln"),
                                                          weight_casts=weight_casts.get(preset) if "cast" in lib else None)
                        else:
                            fns[name] = keras_forward(models[preset, lib.removesuffix("_xla")], inputs,
                                                      lib.endswith("_xla"))
                log(f"inference {policy} seq {seq} batch {batch}: {len(fns)} models x libraries + matmul peaks")
                timings = time_interleaved(_with_peaks(fns, peaks), options.rounds, options.repeats, options.warmup,
                                           warmed=tuple(threads))
                group_peak = _group_peaks(timings, peaks)
                for name in fns:
                    if name.startswith("peak/"):
                        continue
                    preset, lib = name.split("/")
                    t, flops = timings[name], forward_flops(model_config(preset), PRESET_ARCHITECTURE[preset], batch, seq)
                    row = dict(
                        model=preset, policy=policy, sequence_length=seq, batch_size=batch, library=lib,
                        seconds=t["seconds"], cpu_seconds=t["cpu_seconds"], round_seconds=t["rounds"],
                        examples_per_s=batch / t["seconds"], flops=flops, flops_per_s=flops / t["seconds"],
                        peak_flops_per_s=group_peak,
                    )
                    if lib == "torch":
                        row.update(torch_threads=threads[name][0], torch_autocast_bfloat16=policy != "float32",
                                   torch_thread_probe_seconds={str(k): v for k, v in threads[name][1].items()})
                    rows.append(row)
        del models
        _free()
    del torch_models
    gc.collect()
    return rows, parameters


def run_training(options, peaks, log=_log):
    import tensorflow as tf

    rows = []
    batch, seq = options.train_batch_size, options.train_sequence_length
    for preset in options.train_models:
        config, architecture = model_config(preset), PRESET_ARCHITECTURE[preset]
        inputs = make_inputs(config["vocabulary_size"], batch, seq, options.seed)
        labels = tf.constant(np.random.default_rng(options.seed).integers(0, 2, (batch,)), tf.int32)
        for policy in options.policies:
            fns, params = {}, {}
            for lib in options.train_libraries:
                model = build_classifier(lib.removesuffix("_xla").removesuffix("_keras_adamw"), preset, policy)
                params[lib] = int(model.count_params())
                fns[lib] = train_step(model, inputs, labels, lib.endswith("_xla"), adamw(lib))
            log(f"training {preset} {policy} seq {seq} batch {batch}: {', '.join(fns)} + matmul peaks")
            timings = time_interleaved(_with_peaks(dict(fns), peaks), options.train_rounds, 1, options.warmup)
            group_peak = _group_peaks(timings, peaks)
            flops = training_flops(config, architecture, batch, seq)
            for lib in fns:
                t = timings[lib]
                # MFU divides what the row computed: tfdistil's classifier skips most of the
                # last block (`first_token_savings`); `flops` is the model's, the same for all.
                computed = training_flops(config, architecture, batch, seq, first_token=lib.startswith("tfdistil"))
                rows.append(dict(
                    model=preset, policy=policy, sequence_length=seq, batch_size=batch, library=lib,
                    parameters=params[lib], seconds=t["seconds"], cpu_seconds=t["cpu_seconds"],
                    round_seconds=t["rounds"], examples_per_s=batch / t["seconds"], flops=flops,
                    flops_per_s=flops / t["seconds"], flops_computed=computed,
                    flops_computed_per_s=computed / t["seconds"], peak_flops_per_s=group_peak,
                ))
            del fns
            _free()
    return rows


def run_bucketing(limit, data_dir=None, log=_log):
    """One SST-2 epoch (the first `limit` sentences; None: all 67,349) bucketed vs padded to 128, by
    `benchmarks/bench_bucketing.py` in a child process (its own script, so it runs exactly as
    documented), without that script's opt-in skip_padding epochs. Returns its JSON, or a reason."""
    script = Path(__file__).resolve().parent / "bench_bucketing.py"
    if limit is not None and limit <= 0:
        return {"skipped": "bucketing_limit is 0"}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bucketing.json")
        limit_args = [] if limit is None else ["--limit", str(limit)]
        cmd = [sys.executable, str(script), *limit_args, "--no-skip-padding-epochs", "--output", out]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        log(f"bucketing: {' '.join(cmd[1:])}")
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.exists(out):
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return {"skipped": f"bench_bucketing.py failed: {tail[0]}"}
        with open(out, encoding="utf-8") as f:
            result = json.load(f)
    result["command"] = " ".join(["python benchmarks/bench_bucketing.py", *limit_args, "--no-skip-padding-epochs"])
    return result


def sst2_dev_batches(data_dir, sentences, batch_sizes):
    """The first `sentences` SST-2 dev sentences tokenized as serving would (BERT's uncased
    WordPiece, `[CLS] ... [SEP]`), in consecutive batches padded to their longest sentence:
    {batch_size: [batch, ...]} for each of `batch_sizes`, and the vocabulary's source."""
    import tensorflow as tf

    from tfdistil.data.readers import read_glue_tsv
    from tfdistil.text import WordPieceTokenizer

    texts = read_glue_tsv(os.path.join(data_dir, "sst2", "dev.tsv")).texts[:sentences]
    vocab, source = benchmark_vocabulary(texts)
    tokenizer = WordPieceTokenizer(vocab, sequence_length=128, pad_to_sequence_length=False)
    batches = {}
    for batch_size in batch_sizes:
        batches[batch_size] = [
            {k: v.numpy().astype("int32") for k, v in tokenizer(tf.constant(texts[i:i + batch_size])).items()}
            for i in range(0, len(texts) - batch_size + 1, batch_size)
        ]
    return batches, source


def run_real_batches(options, log=_log):
    """Inference (`options.real_model`, bert_base by default) over SST-2 dev sentences padded per batch, as a server batching
    requests sees them (not an issue target: those are read without padding): tfdistil as it
    runs by default (padding skipped), tfdistil with `skip_padding(False)`, and KerasHub, in
    interleaved rounds. One call = one pass over all the batches."""
    data_dir = options.bucketing_data_dir or str(SHARED_DATA)
    if options.real_sentences <= 0:
        return {"skipped": "real_sentences is 0"}
    if not os.path.isfile(os.path.join(data_dir, "sst2", "dev.tsv")):
        return {"skipped": f"no sst2/dev.tsv under {Path(data_dir).name}/ (pass the data folder)"}
    preset = options.real_model
    rows = []
    all_batches, vocabulary = sst2_dev_batches(data_dir, options.real_sentences, options.real_batch_sizes)
    for policy in options.policies:
        models = {"tfdistil": build_tfdistil(preset, policy), "keras_hub": build_keras_hub(preset, policy)}
        for batch_size, batches in all_batches.items():
            fns = {"tfdistil": keras_pass(models["tfdistil"], batches),
                   "tfdistil_padded": keras_pass(models["tfdistil"], batches, skip_padding=False),
                   "keras_hub": keras_pass(models["keras_hub"], batches)}
            log(f"SST-2 dev batches {policy} batch {batch_size}: {len(batches)} batches x {', '.join(fns)}")
            timings = time_interleaved(fns, options.rounds, 1, options.warmup)
            real = sum(int(b["padding_mask"].sum()) for b in batches)
            slots = sum(b["padding_mask"].size for b in batches)
            for lib, t in timings.items():
                rows.append(dict(
                    model=preset, policy=policy, batch_size=batch_size, sentences=len(batches) * batch_size,
                    batches=len(batches), real_token_fraction=real / slots,
                    mean_padded_length=slots / (len(batches) * batch_size), library=lib, seconds=t["seconds"],
                    cpu_seconds=t["cpu_seconds"], round_seconds=t["rounds"],
                    vs_keras_hub=timings["keras_hub"]["seconds"] / t["seconds"],
                    vs_keras_hub_cpu=timings["keras_hub"]["cpu_seconds"] / t["cpu_seconds"],
                ))
            del fns
        del models
        _free()
    return {"vocabulary": vocabulary, "rows": rows,
            "note": "SST-2 dev sentences in order, each batch padded to its longest sentence"}


# --------------------------------------------------------------------------- derived numbers


def _find(rows, **keys):
    for row in rows:
        if all(row.get(k) == v for k, v in keys.items()):
            return row
    return None


def add_ratios_and_mfu(inference, training):
    """Each row's speed-up over KerasHub and PyTorch of the same shape and policy (>1: the row is
    faster), and its MFU against the matmul peak of its compute dtype timed in the same rounds
    (`peak_flops_per_s`)."""
    for rows in (inference, training):
        for row in rows:
            shape = {k: row[k] for k in ("model", "policy", "sequence_length", "batch_size")}
            for peer, key in (("keras_hub", "vs_keras_hub"), ("torch", "vs_torch")):
                other = _find(rows, library=peer, **shape)
                row[key] = other["seconds"] / row["seconds"] if other else None
                row[key + "_cpu"] = other["cpu_seconds"] / row["cpu_seconds"] if other else None
            dtype = "float32" if row["policy"] == "float32" else "bfloat16"
            flops_per_s = row.get("flops_computed_per_s", row["flops_per_s"])
            row["mfu"] = flops_per_s / row["peak_flops_per_s"][dtype]
            row["mfu_of_float32_peak"] = flops_per_s / row["peak_flops_per_s"]["float32"]


def student_teacher(inference, library="tfdistil"):
    """distilbert_base over bert_base inference speed-up at every shape both were timed at."""
    rows = []
    for student in inference:
        if student["model"] != "distilbert_base" or student["library"] != library:
            continue
        shape = {k: student[k] for k in ("policy", "sequence_length", "batch_size")}
        teacher = _find(inference, model="bert_base", library=library, **shape)
        if teacher:
            rows.append(dict(shape, library=library, teacher_seconds=teacher["seconds"],
                             student_seconds=student["seconds"], speedup=teacher["seconds"] / student["seconds"],
                             speedup_cpu=teacher["cpu_seconds"] / student["cpu_seconds"]))
    return rows


def _target(name, goal, row, key, cpu_key=None, note=""):
    """One target: the row's `key` against `goal`. For a speed ratio over a peer (`vs_...`) also
    the row's MFU and the MFU the goal needs: the same FLOPs in the peer's time over the goal,
    against the same peak (mfu * goal / ratio). Above 100%, the goal asks the whole model to
    run faster than the machine's best single matmul in that run."""
    value = row.get(key) if row else None
    target = {"target": name, "goal": goal, "value": value,
              "value_cpu_time": row.get(cpu_key) if row and cpu_key else None,
              "met": None if value is None else bool(value >= goal), "note": note if row else "not measured"}
    if key.startswith("vs_"):
        mfu = row.get("mfu") if row else None
        target["mfu"] = mfu
        target["mfu_needed"] = mfu * goal / value if mfu is not None and value else None
    return target


def evaluate_targets(inference, training, speedups, bucketing):
    targets = []
    shape, tshape = TARGET_SHAPE, TRAIN_TARGET_SHAPE
    where = f"{shape['model']}, seq {shape['sequence_length']}, batch {shape['batch_size']}"
    twhere = f"{tshape['model']} classifier, seq {tshape['sequence_length']}, batch {tshape['batch_size']}"
    for policy, lib in (("float32", "keras_hub"), ("float32", "torch"), ("mixed_bfloat16", "keras_hub")):
        row = _find(inference, library="tfdistil", policy=policy, **shape)
        goal = 1.3 if lib == "keras_hub" else 1.0
        targets.append(_target(f"inference {where}, {policy}: tfdistil / {LIBRARY_TITLES[lib]}", goal,
                               row, f"vs_{lib}", f"vs_{lib}_cpu"))
        row = _find(inference, library="tfdistil_xla", policy=policy, **shape)
        targets.append(_target(f"inference {where}, {policy}: tfdistil XLA / {LIBRARY_TITLES[lib]}", goal,
                               row, f"vs_{lib}", f"vs_{lib}_cpu", note="XLA row; not the default path"))
        if policy != "float32":
            for variant, note in (("tfdistil_xla_ln", "opt-in path: tfdistil.layers.xla_layer_norm()"),
                                  ("tfdistil_cast", "tfdistil.layers.WeightCasts: opt-in in a process, "
                                   "the default of exported SavedModels"),
                                  ("tfdistil_cast_xla_ln", "both opt-in paths")):
                row = _find(inference, library=variant, policy=policy, **shape)
                targets.append(_target(f"inference {where}, {policy}: {LIBRARY_TITLES[variant]} / "
                                       f"{LIBRARY_TITLES[lib]}", goal, row, f"vs_{lib}", f"vs_{lib}_cpu", note=note))
    for policy in POLICIES:
        row = _find(training, library="tfdistil", policy=policy, **tshape)
        targets.append(_target(f"training step {twhere}, {policy}: tfdistil / KerasHub", 1.3, row,
                               "vs_keras_hub", "vs_keras_hub_cpu"))
    row = _find(training, library="tfdistil", policy="float32", **tshape)
    targets.append(_target(f"training step {twhere}, float32: MFU of the float32 matmul peak", 0.6, row,
                           "mfu_of_float32_peak"))
    for policy in POLICIES:
        row = _find(speedups, policy=policy, sequence_length=shape["sequence_length"], batch_size=shape["batch_size"])
        targets.append(_target(f"inference seq {shape['sequence_length']}, batch {shape['batch_size']}, {policy}: "
                               "distilbert_base / bert_base speed-up", 1.9, row, "speedup", "speedup_cpu"))
    summary = bucketing.get("summary") if bucketing else None
    row = {"speedup": summary["speedup_epoch_wall_time"]} if summary else None
    targets.append(_target("SST-2 epoch: bucketing + per-batch padding / fixed padding to 128", 3.0, row, "speedup",
                           note=f"{bucketing.get('sentences', '?')} sentences, {bucketing.get('preset', '?')}"
                           if summary else ""))
    return targets


# --------------------------------------------------------------------------- reports


def machine_info():
    import keras
    import tensorflow as tf

    info = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
        names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
        flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
        info["cpu_model"] = names[0] if names else None
        info["cpu_flags"] = sorted(f for f in flags if f.startswith(("avx512_bf16", "amx", "avx512f", "avx512_vnni")))
    except OSError:
        pass
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}
    for name in ("keras_hub", "torch", "transformers", "tfdistil"):
        try:
            versions[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            try:
                from importlib.metadata import version

                versions[name] = version(name.replace("_", "-"))
            except Exception:  # noqa: BLE001 - a missing library is reported, not fatal
                versions[name] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    info["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    info["onednn_primitive_cache_capacity"] = os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    return info, versions


def _ms(seconds):
    return "—" if seconds is None else f"{seconds * 1000:.1f}"


def _x(ratio):
    return "—" if ratio is None else f"{ratio:.2f}x"


def inference_table(rows, libraries):
    """One line per (model, policy, seq, batch): each library's median latency, tfdistil's ratios
    over KerasHub and PyTorch, and tfdistil's MFU."""
    shapes = []
    for row in rows:
        key = (row["model"], row["policy"], row["sequence_length"], row["batch_size"])
        if key not in shapes:
            shapes.append(key)
    lines = []
    for model, policy, seq, batch in shapes:
        shape = dict(model=model, policy=policy, sequence_length=seq, batch_size=batch)
        line = dict(model=model, policy=policy, seq=seq, batch=batch)
        for lib in libraries:
            row = _find(rows, library=lib, **shape)
            line[lib] = _ms(row["seconds"] if row else None)
        ours = _find(rows, library="tfdistil", **shape) or {}
        line["vs_kh"] = _x(ours.get("vs_keras_hub"))
        line["vs_kh_cpu"] = _x(ours.get("vs_keras_hub_cpu"))
        line["vs_torch"] = _x(ours.get("vs_torch"))
        line["examples"] = f"{ours['examples_per_s']:.1f}" if ours else "—"
        line["mfu"] = f"{ours['mfu']:.0%}" if ours else "—"
        lines.append(line)
    columns = [("model", "model", "{}"), ("policy", "policy", "{}"), ("seq", "seq", "{}"), ("batch", "batch", "{}")]
    columns += [(lib, f"{LIBRARY_TITLES[lib]} (ms)", "{}") for lib in libraries]
    columns += [("examples", "tfdistil examples/s", "{}"), ("vs_kh", "tfdistil vs KerasHub", "{}"),
                ("vs_kh_cpu", "same, CPU time", "{}"), ("vs_torch", "tfdistil vs PyTorch", "{}"),
                ("mfu", "tfdistil MFU", "{}")]
    return markdown_table(lines, columns)


def training_table(rows):
    lines = [dict(model=r["model"], policy=r["policy"], shape=f"{r['batch_size']} x {r['sequence_length']}",
                  library=LIBRARY_TITLES[r["library"]], step=_ms(r["seconds"]), examples=f"{r['examples_per_s']:.2f}",
                  tflops=f"{r.get('flops_computed_per_s', r['flops_per_s']) / 1e12:.3f}", mfu=f"{r['mfu']:.0%}",
                  mfu32=f"{r['mfu_of_float32_peak']:.0%}", vs_kh=_x(r.get("vs_keras_hub")),
                  vs_kh_cpu=_x(r.get("vs_keras_hub_cpu"))) for r in rows]
    columns = [("model", "model", "{}"), ("policy", "policy", "{}"), ("shape", "batch x seq", "{}"),
               ("library", "library", "{}"), ("step", "step (ms)", "{}"), ("examples", "examples/s", "{}"),
               ("tflops", "TFLOP/s computed", "{}"), ("mfu", "MFU (own dtype peak)", "{}"),
               ("mfu32", "MFU (float32 peak)", "{}"), ("vs_kh", "vs KerasHub", "{}"),
               ("vs_kh_cpu", "same, CPU time", "{}")]
    return markdown_table(lines, columns)


def speedup_table(rows):
    lines = [dict(policy=r["policy"], seq=r["sequence_length"], batch=r["batch_size"], teacher=_ms(r["teacher_seconds"]),
                  student=_ms(r["student_seconds"]), speedup=_x(r["speedup"]), cpu=_x(r["speedup_cpu"])) for r in rows]
    columns = [("policy", "policy", "{}"), ("seq", "seq", "{}"), ("batch", "batch", "{}"),
               ("teacher", "bert_base (ms)", "{}"), ("student", "distilbert_base (ms)", "{}"),
               ("speedup", "speed-up", "{}"), ("cpu", "same, CPU time", "{}")]
    return markdown_table(lines, columns)


def peak_table(peak):
    lines = [dict(dtype=d, gflops=f"{p['flops_per_s'] / 1e9:.0f}", at=f"{p['n']} x {p['n']}, {'XLA' if p['xla'] else 'graph'}")
             for d, p in peak.items()]
    return markdown_table(lines, [("dtype", "tf.matmul dtype", "{}"), ("gflops", "peak GFLOP/s", "{}"),
                                  ("at", "best at", "{}")])


def real_batches_table(rows):
    lines = []
    for r in rows:
        if r["library"] != "tfdistil":
            continue
        keys = dict(policy=r["policy"], batch_size=r["batch_size"])
        padded, hub = _find(rows, library="tfdistil_padded", **keys), _find(rows, library="keras_hub", **keys)
        lines.append(dict(policy=r["policy"], batch=r["batch_size"], sentences=r["sentences"],
                          real=f"{100 * r['real_token_fraction']:.0f}%", ours=f"{r['seconds']:.2f}",
                          padded=f"{padded['seconds']:.2f}", hub=f"{hub['seconds']:.2f}", ratio=_x(r["vs_keras_hub"]),
                          cpu=_x(r["vs_keras_hub_cpu"]), skip=_x(padded["seconds"] / r["seconds"])))
    columns = [("policy", "policy", "{}"), ("batch", "batch", "{}"), ("sentences", "sentences", "{}"),
               ("real", "real tokens", "{}"), ("ours", "tfdistil (s)", "{}"),
               ("padded", "tfdistil, padding computed (s)", "{}"), ("hub", "KerasHub (s)", "{}"),
               ("ratio", "tfdistil vs KerasHub", "{}"), ("cpu", "same, CPU time", "{}"),
               ("skip", "skipping padding vs computing it", "{}")]
    return markdown_table(lines, columns)


def targets_table(targets):
    lines = []
    for t in targets:
        value = "—" if t["value"] is None else (f"{t['value']:.0%}" if t["goal"] < 1 else f"{t['value']:.2f}x")
        cpu = "—" if t["value_cpu_time"] is None else f"{t['value_cpu_time']:.2f}x"
        goal = f">= {t['goal']:.0%}" if t["goal"] < 1 else f">= {t['goal']:.1f}x"
        met = {True: "met", False: "missed", None: "not measured"}[t["met"]]
        mfu = "—" if t.get("mfu") is None else f"{t['mfu']:.0%}"
        needed = "—" if t.get("mfu_needed") is None else f"{t['mfu_needed']:.0%}"
        lines.append(dict(target=t["target"], value=value, cpu=cpu, goal=goal, met=met, mfu=mfu, needed=needed))
    return markdown_table(lines, [("target", "target", "{}"), ("value", "measured (wall)", "{}"),
                                  ("cpu", "CPU time", "{}"), ("goal", "goal", "{}"), ("met", "", "{}"),
                                  ("mfu", "tfdistil MFU", "{}"), ("needed", "MFU the goal needs", "{}")])


def _skip_padding_epochs(bucketing):
    """The bucketing benchmark's epochs with padding skipped in training (opt-in), if it timed them."""
    r, summary = bucketing["results"], bucketing["summary"]
    if "bucketed_skip" not in r:
        return ""
    return (f" With padding skipped in training too (opt-in `skip_padding(training=True)`): "
            f"{r['bucketed_skip']['epoch_wall_time_s']:.1f} s bucketed vs {r['fixed_128_skip']['epoch_wall_time_s']:.1f} s "
            f"padded to 128 ({summary['speedup_bucketing_when_skipping']:.2f}x); skipping alone makes the "
            f"padded-to-128 epoch {summary['speedup_skip_padding_fixed_128']:.2f}x faster and the bucketed one "
            f"{summary['speedup_skip_padding_bucketed']:.2f}x.")


def render_markdown(result):
    m, v, o = result["machine"], result["versions"], result["options"]
    load = result["load_average"]
    lines = [
        "## Performance",
        "",
        f"tfdistil against KerasHub {v.get('keras_hub')} and Hugging Face `transformers` {v.get('transformers')} "
        f"(PyTorch {v.get('torch')}, eager, CPU) in one process on this machine: {m.get('cpu_model')}, "
        f"{m['cpu_count']} cores ({', '.join(m.get('cpu_flags', []))}), TensorFlow {v['tensorflow']}, "
        f"Keras {v['keras']}. Load average at the start / end of the run: "
        f"{load['start'][0]:.1f} / {load['end'][0]:.1f} (other jobs shared the 2 cores, so absolute times are "
        "noisy; the libraries were timed in interleaved rounds, and the ratios are what to read). "
        f"Median of {o['rounds']} rounds after {o['warmup']} warm-up calls; randomly initialised models "
        "of the same sizes, the same random token ids, no padding. Made by:",
        "",
        "```bash",
        'pip install -e ".[bench]"     # keras-hub, torch (CPU), transformers',
        result["command"],
        "```",
        "",
        "**Targets** (issue 7):",
        "",
        targets_table(result["targets"]),
        "",
        "**Inference** (latency of one call in ms; MFU against the matmul peak of the policy's compute "
        "dtype, timed in the same rounds):",
        "",
        inference_table(result["inference"], o["libraries"]),
        "",
    ]
    if result["training"]:
        lines += ["**Training step** (`train_on_batch` of a 2-class classifier; AdamW, tfdistil's own for the tfdistil "
                  "rows, Keras' for KerasHub and \"tfdistil, Keras AdamW\"; tfdistil's classifier computes only [CLS] "
                  "in its last block, so its TFLOP/s and MFU count the FLOPs it computes):", "",
                  training_table(result["training"]), ""]
    if result["student_teacher"]:
        lines += ["**Student / teacher** (tfdistil `distilbert_base` against `bert_base`):", "",
                  speedup_table(result["student_teacher"]), ""]
    lines += ["**Matmul peak** (best of the start and end of the run; each row's MFU divides by the same "
              "matmul timed again in that row's rounds):", "",
              peak_table(result["peak"]), ""]
    b = result["bucketing"]
    if b.get("summary"):
        r = b["results"]
        lines += [f"**Length bucketing** (`{b['command']}`: one epoch of {b['sentences']:,} SST-2 sentences, "
                  f"{b['preset']}, {b['precision']}, batch {b['batch_size']}): "
                  f"{r['bucketed']['epoch_wall_time_s']:.1f} s with buckets {tuple(b['bucket_boundaries'])} and "
                  f"per-batch padding vs {r['fixed_128']['epoch_wall_time_s']:.1f} s padded to 128, "
                  f"{b['summary']['speedup_epoch_wall_time']:.2f}x (both computing every padded position, "
                  "as tfdistil trains by default)." + _skip_padding_epochs(b), ""]
    else:
        lines += [f"**Length bucketing**: {b.get('skipped', 'not run')}.", ""]
    real = result.get("real_batches", {})
    if real.get("rows"):
        lines += [f"**Inference on SST-2 dev batches** (not an issue target; {o['real_model']}, one pass over the first "
                  f"sentences of SST-2 dev, each batch padded to its longest sentence, vocabulary: "
                  f"{real['vocabulary']}): tfdistil skips the padding of inference calls by default "
                  "(`TransformerEncoderBlock`); the middle column traces it with `skip_padding(False)`. These "
                  "batches bring many shapes: the run holds up to "
                  f"{m.get('onednn_primitive_cache_capacity') or 'the default 1,024'} compiled oneDNN kernels "
                  "(`ONEDNN_PRIMITIVE_CACHE_CAPACITY`; with the default 1,024 they cycled out of the cache and "
                  "every library ran ~3x slower).", "",
                  real_batches_table(real["rows"]), ""]
    elif real:
        lines += [f"**Inference on SST-2 dev batches**: {real.get('skipped', 'not run')}.", ""]
    lines += [f"Details (every round, CPU times, parameter counts): `{result['output']}`.", ""]
    lines += result.get("notes", [])
    return "\n".join(lines)


def _derive(inference, training, bucketing):
    """The numbers computed from the timed rows: ratios and MFU (added to the rows in place),
    the student/teacher speed-ups and the targets."""
    add_ratios_and_mfu(inference, training)
    speedups = student_teacher(inference)
    return speedups, evaluate_targets(inference, training, speedups, bucketing)


def _write(result, output, markdown):
    """Write `result` as JSON to `output` and its markdown to `markdown` (either may be None);
    returns `result` with its "markdown" added."""
    if output:
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        with open(output, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    result["markdown"] = render_markdown(result)
    if markdown:
        with open(markdown, "w", encoding="utf-8") as f:
            f.write(result["markdown"])
    return result


def rederive(path, markdown=None):
    """Re-derive the ratios, MFU, speed-ups and targets of a result JSON written by `run_peers`
    from its timed rows (nothing is timed again), write it back, and write its markdown to
    `markdown` (if given): for results made before the report gained a column."""
    with open(path, encoding="utf-8") as f:
        result = json.load(f)
    result["student_teacher"], result["targets"] = _derive(result["inference"], result["training"], result["bucketing"])
    return _write(result, path, markdown)


def run_peers(options, log=_log):
    """Measure everything `options` asks for; write JSON (and markdown) and return the result."""
    options.validate()
    start_load = os.getloadavg()
    started = time.perf_counter()
    machine, versions = machine_info()
    # First, while this process holds no model: the child process then has the machine's
    # memory and caches to itself, as a user's training run would.
    bucketing = run_bucketing(options.bucketing_limit, options.bucketing_data_dir, log)
    log(f"matmul peak (sizes {options.peak_sizes})")
    peak_start = matmul_peak(options.peak_sizes, options.peak_repeats)
    peaks = peak_callables(peak_start)
    inference, parameters = run_inference(options, peaks, log)
    training = run_training(options, peaks, log) if options.train_models and options.train_libraries else []
    real_batches = run_real_batches(options, log)
    log("matmul peak again")
    peak_end = matmul_peak(options.peak_sizes, options.peak_repeats)
    # The higher of the two measurements: the conservative denominator for MFU.
    peak = {d: max(peak_start[d], peak_end[d], key=lambda p: p["flops_per_s"]) for d in peak_start}
    speedups, targets = _derive(inference, training, bucketing)
    mismatched = {m: c for m, c in parameters.items() if len(set(c.values())) > 1}
    notes = []
    if options.torch_skip:
        notes.append(f"PyTorch was not timed at {', '.join(options.torch_skip)} (model:batch) to keep the run short.")
    if "torch" in options.libraries:
        notes.append("PyTorch gets, at each shape, the faster of 1 intra-op thread and its default (one per core): "
                     "with other processes on the cores its OpenMP threads stall (see `pick_torch_threads`); "
                     "each row's `torch_threads` in the JSON says which was used.")
    if "torch" in options.libraries and not options.torch_autocast and "mixed_bfloat16" in options.policies:
        notes.append("PyTorch runs in float32 only (rows under mixed_bfloat16 have no PyTorch column); "
                     "--torch-autocast times it under bfloat16 autocast.")
    if mismatched:
        notes.append(f"Parameter counts differ between libraries: {mismatched}.")
    result = {
        "benchmark": "bench_peers",
        "command": options.command,
        "options": dataclasses.asdict(options),
        "machine": machine,
        "versions": versions,
        "load_average": {"start": list(start_load), "end": list(os.getloadavg())},
        "wall_time_s": None,
        "peak": peak,
        "peak_measurements": {"start": peak_start, "end": peak_end},
        "parameters": parameters,
        "inference": inference,
        "training": training,
        "student_teacher": speedups,
        "bucketing": bucketing,
        "real_batches": real_batches,
        "targets": targets,
        "output": options.output,
        "notes": notes,
    }
    result["wall_time_s"] = time.perf_counter() - started
    return _write(result, options.output, options.markdown)
