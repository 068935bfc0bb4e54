"""The peer benchmark (benchmarks/bench_peers.py, benchmarks/peers.py): its FLOP formula against
two independent counts, the peers it builds against tfdistil's parameter counts, its timing
protocol, its target bookkeeping, and the JSON a --quick run writes."""
import json

import numpy as np
import pytest

# Installed by the test extra: a missing peer is an error here, not a skipped test.
import keras_hub  # noqa: F401, E402
import torch  # noqa: E402
import transformers  # noqa: F401, E402

import tensorflow as tf  # noqa: E402

from conftest import load_benchmark  # noqa: E402
from tfdistil.layers import skip_padding  # noqa: E402
from tfdistil.models import presets  # noqa: E402

# benchmarks/peers.py as the script imports it (one module object: what the script calls is what
# a test patches).
peers = load_benchmark("bench_peers").peers

# A DistilBERT small enough to build three times in a test (the presets' only DistilBERT is base).
TINY_DISTILBERT = dict(vocabulary_size=30522, max_sequence_length=512, dropout=0.1, num_layers=2, num_heads=2,
                       hidden_dim=128, intermediate_dim=512)


@pytest.fixture
def tiny_distilbert(monkeypatch):
    monkeypatch.setitem(presets.PRESETS, "distilbert_tiny_test", TINY_DISTILBERT)
    monkeypatch.setitem(presets.PRESET_ARCHITECTURE, "distilbert_tiny_test", "distilbert")
    return "distilbert_tiny_test"


def graph_matmul_flops(model, fn, *specs):
    """2 * (output elements) * (contracted size), summed over every MatMul / BatchMatMul / Einsum of
    the traced graph of `fn`: a count from the shapes TensorFlow actually multiplies. Traced
    without tfdistil's unpadded path (its matmuls sit in the branches of a `cond`): the formula
    is that of the padded batch, which is what inputs without padding run."""
    with skip_padding(model, "never"):
        graph = tf.function(fn).get_concrete_function(*specs).graph
    total = 0
    for op in graph.get_operations():
        if op.type == "MatMul":
            a = op.inputs[0].shape
            k = a[0] if op.get_attr("transpose_a") else a[1]
        elif op.type in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
            x = op.inputs[0].shape
            k = x[-2] if op.get_attr("adj_x") else x[-1]
        elif op.type == "Einsum":
            inputs, output = op.get_attr("equation").decode().split("->")
            sizes = {}
            for operand, tensor in zip(inputs.split(","), op.inputs):
                sizes.update(zip(operand, tensor.shape))
            k = int(np.prod([sizes[c] for c in sizes if c not in output]))
        else:
            continue
        total += 2 * int(np.prod(op.outputs[0].shape)) * int(k)
    return total


def input_specs(model, batch, seq):
    return ({name: tf.TensorSpec((batch, seq), tf.int32) for name in model.input},)


@pytest.mark.parametrize("preset", ["bert_tiny", "distilbert"])
def test_flop_formula_matches_the_graphs_and_pytorchs_flop_counter(preset, tiny_distilbert):
    preset = tiny_distilbert if preset == "distilbert" else preset
    architecture = presets.PRESET_ARCHITECTURE[preset]
    batch, seq = 2, 16
    expected = peers.forward_flops(peers.model_config(preset), architecture, batch, seq)
    # Our own graph, and KerasHub's (EinsumDense, separate Q/K/V): same products, same count.
    for build in (peers.build_tfdistil, peers.build_keras_hub):
        model = build(preset, "float32")
        assert graph_matmul_flops(model, lambda x, m=model: m(x), *input_specs(model, batch, seq)) == expected
    # tfdistil's classifier: its last block computes [CLS] only, which `first_token_savings` counts.
    classifier = peers.build_classifier("tfdistil", preset, "float32")
    config = peers.model_config(preset)
    assert graph_matmul_flops(classifier, lambda x: classifier(x), *input_specs(classifier, batch, seq)) == (
        expected - peers.first_token_savings(config, batch, seq) + peers.classifier_head_flops(config, architecture, batch))
    # PyTorch's own counter on the Hugging Face model (eager attention: sdpa has no FLOP formula on CPU).
    from torch.utils.flop_counter import FlopCounterMode

    hf = peers.build_torch(preset)
    hf.set_attn_implementation("eager")
    with FlopCounterMode(display=False) as counter:
        peers.torch_forward(hf, peers.make_inputs(30522, batch, seq))()
    assert counter.get_total_flops() == expected


def test_flop_formula_by_hand_and_training_is_three_forwards():
    config = dict(hidden_dim=4, intermediate_dim=8, num_layers=1)
    # tokens 2*3=6: QKV 2*6*4*12=576, scores + context 2*(2*2*3*3*4)=288, output 2*6*4*4=192,
    # feed-forward 2*(2*6*4*8)=768; pooler 2*2*4*4=64.
    assert peers.forward_flops(config, "bert", 2, 3) == 576 + 288 + 192 + 768 + 64
    assert peers.forward_flops(config, "distilbert", 2, 3) == 576 + 288 + 192 + 768
    head = 2 * 2 * 4 * 4 + 2 * 2 * 4 * 2  # DistilBERT's pre-classifier + classifier
    assert peers.training_flops(config, "distilbert", 2, 3) == 3 * (1824 + head)
    # A classifier computing [CLS] only in its (here only) block keeps K and V of all 6 tokens,
    # 2*6*4*8=384, and for 2 rows Q 2*2*4*4=64, scores + context 2*(2*2*3*4)=96, output 64 and
    # the feed-forward 2*(2*2*4*8)=256.
    assert peers.first_token_savings(config, 2, 3) == (576 + 288 + 192 + 768) - (384 + 64 + 96 + 64 + 256)
    assert peers.training_flops(config, "distilbert", 2, 3, first_token=True) == 3 * (384 + 64 + 96 + 64 + 256 + head)


@pytest.mark.parametrize("preset", ["bert_tiny", "distilbert"])
def test_peers_have_exactly_tfdistils_parameter_count(preset, tiny_distilbert):
    preset = tiny_distilbert if preset == "distilbert" else preset
    ours = peers.build_tfdistil(preset, "mixed_bfloat16")
    hub = peers.build_keras_hub(preset, "mixed_bfloat16")
    hf = peers.build_torch(preset)
    assert ours.count_params() == hub.count_params() == peers.torch_parameter_count(hf) > 4_000_000
    assert ours.dtype_policy.name == hub.dtype_policy.name == "mixed_bfloat16"
    assert hub.transformer_layers[0].dtype_policy.name == "mixed_bfloat16"
    # The classifiers timed in training: the same heads too.
    assert (peers.build_classifier("tfdistil", preset, "float32").count_params()
            == peers.build_classifier("keras_hub", preset, "float32").count_params())


def test_interleaved_timing_rotates_the_order_and_counts_calls():
    calls = []
    fns = {name: (lambda n=name: calls.append(n)) for name in ("a", "b", "c")}
    timings = peers.time_interleaved(fns, rounds=3, repeats=2, warmup=1, warmed=("c",))
    assert calls[:2] == ["a", "b"]  # warm-up, "c" already warm
    timed = calls[2:]
    assert [timed[i] for i in range(0, 18, 2)] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(t["rounds"]) == 3 for t in timings.values())
    assert all(t["seconds"] >= 0 and t["cpu_seconds"] >= 0 for t in timings.values())


PEAKS = {"float32": 1e12, "bfloat16": 4e12}


def _row(library, seconds, cpu, model="bert_base", policy="float32", batch=8, seq=128, flops=1e12, peaks=PEAKS):
    return dict(model=model, policy=policy, sequence_length=seq, batch_size=batch, library=library, seconds=seconds,
                cpu_seconds=cpu, flops=flops, flops_per_s=flops / seconds, examples_per_s=batch / seconds,
                peak_flops_per_s=peaks)


def test_ratios_mfu_and_targets_from_rows():
    inference = [_row("tfdistil", 1.0, 2.0), _row("keras_hub", 1.25, 3.0), _row("torch", 4.0, 4.0),
                 _row("tfdistil", 0.5, 1.0, model="distilbert_base"),
                 _row("tfdistil", 0.4, 0.8, policy="mixed_bfloat16"), _row("keras_hub", 0.6, 1.2, policy="mixed_bfloat16"),
                 _row("tfdistil_xla_ln", 0.5, 1.0, policy="mixed_bfloat16"),
                 _row("tfdistil_cast", 0.45, 1.0, policy="mixed_bfloat16")]
    # Each row's MFU is against the peak timed in its own rounds.
    training = [_row("tfdistil", 2.0, 2.0, batch=16, flops=2.6e12, peaks={"float32": 2e12, "bfloat16": 8e12}),
                _row("keras_hub", 2.2, 2.0, batch=16, flops=2.6e12, peaks={"float32": 2e12, "bfloat16": 8e12})]
    peers.add_ratios_and_mfu(inference, training)
    ours = inference[0]
    assert ours["vs_keras_hub"] == pytest.approx(1.25) and ours["vs_keras_hub_cpu"] == pytest.approx(1.5)
    assert ours["vs_torch"] == pytest.approx(4.0) and ours["mfu"] == pytest.approx(1.0)
    assert inference[4]["mfu"] == pytest.approx(1e12 / 0.4 / 4e12)  # bf16 rows against the bf16 peak
    assert inference[4]["mfu_of_float32_peak"] == pytest.approx(1e12 / 0.4 / 1e12)
    assert inference[2]["vs_torch"] == pytest.approx(1.0) and inference[3]["vs_keras_hub"] is None
    speedups = peers.student_teacher(inference)
    assert [s["speedup"] for s in speedups] == [pytest.approx(2.0)]
    targets = {t["target"]: t for t in peers.evaluate_targets(inference, training, speedups, {"skipped": "x"})}
    assert len(targets) == 15
    f32_kh = targets["inference bert_base, seq 128, batch 8, float32: tfdistil / KerasHub"]
    assert (f32_kh["value"], f32_kh["met"], f32_kh["value_cpu_time"]) == (pytest.approx(1.25), False, pytest.approx(1.5))
    # 1.3x KerasHub's 1.25 s is 0.9615 s: 1e12 FLOPs in it is 1.04e12 FLOP/s, 104% of the 1e12 peak.
    assert (f32_kh["mfu"], f32_kh["mfu_needed"]) == (pytest.approx(1.0), pytest.approx(1e12 / (1.25 / 1.3) / 1e12))
    # Training: 2.2 s / 1.3 = 1.692 s for 2.6e12 FLOPs against the 2e12 peak: 76.8% (at 65% now).
    train_kh = targets["training step bert_base classifier, seq 128, batch 16, float32: tfdistil / KerasHub"]
    assert (train_kh["mfu"], train_kh["mfu_needed"]) == (pytest.approx(0.65), pytest.approx(2.6e12 / (2.2 / 1.3) / 2e12))
    table = peers.targets_table(list(targets.values()))
    assert "| MFU the goal needs |" in table.splitlines()[0]
    assert "| 100% | 104% |" in table  # the float32 KerasHub row, as the table prints it
    assert targets["inference bert_base, seq 128, batch 8, float32: tfdistil / PyTorch"]["met"] is True
    assert targets["inference bert_base, seq 128, batch 8, mixed_bfloat16: tfdistil / KerasHub"]["met"] is True
    xla_ln = targets["inference bert_base, seq 128, batch 8, mixed_bfloat16: tfdistil XLA LayerNorm / KerasHub"]
    assert (xla_ln["value"], xla_ln["met"]) == (pytest.approx(0.6 / 0.5), False) and "opt-in" in xla_ln["note"]
    cast = targets["inference bert_base, seq 128, batch 8, mixed_bfloat16: tfdistil weights cast once / KerasHub"]
    assert (cast["value"], cast["met"]) == (pytest.approx(0.6 / 0.45), True) and "SavedModel" in cast["note"]
    both = targets["inference bert_base, seq 128, batch 8, mixed_bfloat16: "
                   "tfdistil weights cast once + XLA LayerNorm / KerasHub"]
    assert (both["value"], both["met"], both["note"]) == (None, None, "not measured")
    mfu = targets["training step bert_base classifier, seq 128, batch 16, float32: MFU of the float32 matmul peak"]
    assert mfu["value"] == pytest.approx(0.65) and mfu["met"] is True
    assert targets["inference seq 128, batch 8, float32: distilbert_base / bert_base speed-up"]["met"] is True
    assert targets["inference seq 128, batch 8, mixed_bfloat16: distilbert_base / bert_base speed-up"]["met"] is None
    assert targets["SST-2 epoch: bucketing + per-batch padding / fixed padding to 128"]["met"] is None


def _bench_module():
    return load_benchmark("bench_peers")


def test_quick_run_writes_the_json_and_markdown(tmp_path, capsys):
    bench = _bench_module()
    assert bench.parse(["--quick"]).models == ("bert_mini",) and bench.parse(["--quick"]).bucketing_limit == 0
    assert bench.parse(["--quick"]).real_sentences == 0 and bench.parse([]).real_sentences == 256
    out, md = tmp_path / "peers.json", tmp_path / "peers.md"
    # SST-2 dev stand-in: "good" x 1..4 words -> 3..6 tokens with [CLS] and [SEP]; batches of 4.
    (tmp_path / "sst2").mkdir()
    sentences = [" ".join(["good"] * n) for n in (1, 2, 3, 4, 2, 2, 1, 1)]
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{t}\t1\n" for t in sentences))
    # float32 only and no XLA rows: compiling more graphs would double the test's time (bf16 rows
    # against the bf16 peak are checked in test_ratios_mfu_and_targets_from_rows).
    bench.main(["--quick", "--models", "bert_tiny", "--seq", "16", "--batch", "1,2", "--train-batch", "2",
                "--train-seq", "16", "--libraries", "tfdistil,keras_hub,torch", "--policies", "float32",
                "--real-sentences", "8", "--real-batch", "4", "--real-model", "bert_tiny", "--data-dir", str(tmp_path),
                "--output", str(out), "--markdown", str(md)])
    result = json.loads(out.read_text())
    assert {"machine", "versions", "load_average", "peak", "parameters", "inference", "training", "student_teacher",
            "bucketing", "targets", "options", "command"} <= set(result)
    assert len(result["load_average"]["start"]) == 3 and result["versions"]["keras_hub"]
    assert result["peak"]["float32"]["flops_per_s"] > 0 and result["peak"]["bfloat16"]["flops_per_s"] > 0
    assert len(set(result["parameters"]["bert_tiny"].values())) == 1
    config = peers.model_config("bert_tiny")
    for batch in (1, 2):
        rows = {r["library"]: r for r in result["inference"] if r["batch_size"] == batch}
        assert sorted(rows) == ["keras_hub", "tfdistil", "torch"]
        ours = rows["tfdistil"]
        assert ours["flops"] == peers.forward_flops(config, "bert", batch, 16)
        assert ours["vs_keras_hub"] == pytest.approx(rows["keras_hub"]["seconds"] / ours["seconds"])
        assert ours["vs_torch"] == pytest.approx(rows["torch"]["seconds"] / ours["seconds"])
        assert ours["mfu"] == pytest.approx(ours["flops"] / ours["seconds"] / ours["peak_flops_per_s"]["float32"])
        assert ours["peak_flops_per_s"] == rows["keras_hub"]["peak_flops_per_s"]  # one group, one peak
        assert rows["torch"]["torch_threads"] in (1, torch.get_num_threads())
    training = {r["library"]: r for r in result["training"]}
    assert sorted(training) == ["keras_hub", "tfdistil", "tfdistil_keras_adamw"]
    assert {r["flops"] for r in training.values()} == {peers.training_flops(config, "bert", 2, 16)}
    # MFU from what each computed: tfdistil's classifier skips most of its last block.
    for lib, row in training.items():
        computed = peers.training_flops(config, "bert", 2, 16, first_token=lib != "keras_hub")
        assert row["flops_computed"] == computed and (computed < row["flops"]) == (lib != "keras_hub")
        assert row["mfu"] == pytest.approx(computed / row["seconds"] / row["peak_flops_per_s"]["float32"])
    assert len(result["targets"]) == 15 and all(t["met"] is None for t in result["targets"])
    # Padded-batch rows: two batches of 4 padded to 6 and to 4 tokens; 18 + 14 real of 24 + 16.
    real = {r["library"]: r for r in result["real_batches"]["rows"]}
    assert sorted(real) == ["keras_hub", "tfdistil", "tfdistil_padded"]
    assert real["tfdistil"]["batches"] == 2 and real["tfdistil"]["real_token_fraction"] == pytest.approx(32 / 40)
    assert real["tfdistil"]["mean_padded_length"] == pytest.approx(5.0)
    assert real["tfdistil_padded"]["vs_keras_hub"] == pytest.approx(
        real["keras_hub"]["seconds"] / real["tfdistil_padded"]["seconds"])
    assert result["command"].startswith("python benchmarks/bench_peers.py --quick")
    text = md.read_text()
    assert "| bert_tiny | float32 | 16 | 2 |" in text and result["command"] in text
    assert "**Inference on SST-2 dev batches**" in text and "| float32 | 4 | 8 | 80% |" in text
    assert "| bert_tiny | float32 | 16 | 2 |" in capsys.readouterr().out
    # --rederive: the same targets, speed-ups and markdown again from the timed rows alone.
    out.write_text(json.dumps(dict(result, targets=[], student_teacher=[])))
    again_md = tmp_path / "again.md"
    bench.main(["--rederive", str(out), "--markdown", str(again_md)])
    again = json.loads(out.read_text())
    assert again["targets"] == result["targets"] and again["student_teacher"] == result["student_teacher"]
    assert again_md.read_text() == text

