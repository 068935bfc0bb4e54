"""Training recipes: the warm-up/decay schedule against the formula by hand, AdamW's weight
decay (which variables shrink, by exactly how much), global gradient clipping through one
hand-computed Adam step, the precision choice, and the run callbacks (TensorBoard files read
back with TensorBoard's own reader, early stopping, resume after a killed process).

Golden values are written out or computed here with numpy; none comes from the code under test.
"""
import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import keras
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

import tfdistil.training.precision as precision_module
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier
from tfdistil.training import (
    POLICIES,
    AdamW,
    LinearWarmupDecay,
    cpu_supports_bfloat16,
    make_optimizer,
    resolve_precision,
    run_callbacks,
)

ADAM_BETA_2 = 0.999  # Keras' default, which make_optimizer keeps
BERT_EPSILON = 1e-6  # BERT's Adam epsilon, which make_optimizer sets


def read_tensorboard_scalars(log_dir):
    """{tag: [(step, value), ...]} read with TensorBoard's own event reader. TF2 summaries
    are stored as tensors; size_guidance 0 keeps every event."""
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return {
        tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
        for tag in acc.Tags()["tensors"]
    }


# ----- LinearWarmupDecay ----------------------------------------------------------------

# peak 2.0, 10 steps, 4 of warm-up, end 0.2: 2.0*s/4 below 4, then 2.0 - 1.8*(s-4)/6, then 0.2.
WARMUP_CASES = [(0, 0.0), (1, 0.5), (3, 1.5), (4, 2.0), (5, 1.7), (7, 1.1), (9, 0.5), (10, 0.2), (11, 0.2), (1000, 0.2)]
# peak 1.0, 8 steps, no warm-up, end 0: 1 - s/8, then 0.
NO_WARMUP_CASES = [(0, 1.0), (1, 0.875), (2, 0.75), (6, 0.25), (8, 0.0), (9, 0.0), (50, 0.0)]


@pytest.mark.parametrize("step,expected", WARMUP_CASES)
def test_schedule_with_warmup_matches_formula(step, expected):
    schedule = LinearWarmupDecay(2.0, total_steps=10, warmup_steps=4, end_learning_rate=0.2)
    assert float(schedule(step)) == pytest.approx(expected, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("step,expected", NO_WARMUP_CASES)
def test_schedule_without_warmup_starts_at_peak(step, expected):
    schedule = LinearWarmupDecay(1.0, total_steps=8)
    assert float(schedule(step)) == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_schedule_takes_the_optimizer_step_variable_inside_tf_function():
    # The optimizer calls the schedule with its int64 `iterations` inside a compiled step.
    schedule = LinearWarmupDecay(2.0, total_steps=10, warmup_steps=4, end_learning_rate=0.2)
    step = tf.Variable(0, dtype=tf.int64)
    fn = tf.function(lambda: schedule(step))
    for s, expected in WARMUP_CASES:
        step.assign(s)
        assert float(fn()) == pytest.approx(expected, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(total_steps=0), r"total_steps must be >= 1, got 0"),
        (dict(total_steps=-5), r"got -5"),
        (dict(total_steps=10, warmup_steps=-1), r"warmup_steps must be in \[0, total_steps=10\], got -1"),
        (dict(total_steps=10, warmup_steps=11), r"got 11"),
    ],
)
def test_schedule_argument_errors_show_the_bad_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearWarmupDecay(1e-3, **kwargs)


def test_schedule_config_and_serialization_round_trip():
    schedule = LinearWarmupDecay(2.0, total_steps=10, warmup_steps=4, end_learning_rate=0.2)
    assert schedule.get_config() == {
        "peak_learning_rate": 2.0, "total_steps": 10, "warmup_steps": 4, "end_learning_rate": 0.2,
    }
    # Through JSON, as in a .keras file.
    restored = keras.optimizers.schedules.deserialize(
        json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
    )
    also = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(schedule)))
    )
    for other in (restored, also):
        assert type(other) is LinearWarmupDecay and other is not schedule
        assert other.get_config() == schedule.get_config()
        for step, expected in WARMUP_CASES:
            assert float(other(step)) == pytest.approx(expected, rel=1e-6, abs=1e-7)


def test_make_optimizer_schedule_uses_warmup_ratio():
    # 100 steps, warmup_ratio 0.1 -> 10 warm-up steps, then linear to 0 at step 100.
    optimizer = make_optimizer(1e-3, total_steps=100, warmup_ratio=0.1)
    config = optimizer.get_config()
    assert config["learning_rate"]["config"] == {
        "peak_learning_rate": 1e-3, "total_steps": 100, "warmup_steps": 10, "end_learning_rate": 0.0,
    }
    assert config["epsilon"] == BERT_EPSILON and config["weight_decay"] == 0.01
    assert config["global_clipnorm"] == 1.0 and config["clipnorm"] is None
    for iterations, expected in [(0, 0.0), (5, 0.5e-3), (10, 1e-3), (55, 0.5e-3), (100, 0.0), (150, 0.0)]:
        optimizer.iterations.assign(iterations)
        assert float(optimizer.learning_rate) == pytest.approx(expected, rel=1e-6, abs=1e-10)


# ----- make_optimizer: weight decay -----------------------------------------------------

# Last name component of every trainable variable of the tiny classifiers below.
DECAYED = {"embeddings", "qkv_kernel", "output_kernel", "kernel"}
NOT_DECAYED = {"gamma", "beta", "qkv_bias", "output_bias", "bias"}


def tiny_classifier(arch):
    kwargs = dict(vocabulary_size=20, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                  max_sequence_length=6)
    backbone = BertBackbone(**kwargs) if arch == "bert" else DistilBertBackbone(**kwargs)
    return TextClassifier(backbone, num_classes=3)


def randomise(variables, seed=0):
    # Biases and LayerNorm betas start at 0 and gammas at 1: a decay of 0 would go unseen.
    rng = np.random.default_rng(seed)
    for v in variables:
        v.assign(rng.uniform(0.5, 1.5, size=v.shape).astype("float32") * rng.choice([-1, 1], size=v.shape))


def one_decay_only_step(optimizer, variables):
    """One AdamW step with zero gradients: Adam's update is 0 / (0 + eps) = 0, only the decay acts."""
    before = {id(v): np.array(v.numpy()) for v in variables}
    optimizer.apply([tf.zeros_like(v) for v in variables], variables)
    return before


@pytest.mark.parametrize(
    "arch,n_decayed,n_excluded",
    [
        # BERT, 1 layer: token/position/segment embeddings, qkv, attention output, 2 FFN,
        # pooler, classifier kernels = 9; 3 LayerNorms x (gamma, beta) + qkv/output biases +
        # 2 FFN + pooler + classifier biases = 12.
        ("bert", 9, 12),
        # DistilBERT: 2 embeddings + qkv, output, 2 FFN, pre_classifier, classifier = 8;
        # the same 12 without the pooler's bias but with pre_classifier's.
        ("distilbert", 8, 12),
    ],
)
def test_weight_decay_skips_layernorm_and_every_bias(arch, n_decayed, n_excluded):
    model = tiny_classifier(arch)
    variables = model.trainable_variables
    randomise(variables)
    lr, wd = 0.1, 0.5
    optimizer = make_optimizer(lr, total_steps=10, warmup_ratio=0.0, weight_decay=wd)
    before = one_decay_only_step(optimizer, variables)
    decayed, excluded = [], []
    for v in variables:
        assert v.name in DECAYED | NOT_DECAYED, f"unclassified variable {v.path}"
        if v.name in DECAYED:
            # Decoupled decay: w <- w - lr * wd * w = 0.95 w.
            np.testing.assert_allclose(v.numpy(), before[id(v)] * (1 - lr * wd), rtol=1e-6, err_msg=v.path)
            decayed.append(v.path)
        else:
            np.testing.assert_array_equal(v.numpy(), before[id(v)], err_msg=v.path)
            excluded.append(v.path)
    assert (len(decayed), len(excluded)) == (n_decayed, n_excluded), (decayed, excluded)


def test_weight_decay_follows_the_schedule():
    # With warm-up the learning rate at step 0 is 0, so the first decay is 0 as well;
    # at step 5 of 10 warm-up steps it is peak / 2.
    w = keras.Variable(np.full(4, 2.0, "float32"), name="kernel")
    optimizer = make_optimizer(0.2, total_steps=100, warmup_ratio=0.1, weight_decay=0.5)
    one_decay_only_step(optimizer, [w])
    np.testing.assert_array_equal(w.numpy(), np.full(4, 2.0))
    optimizer.iterations.assign(5)
    one_decay_only_step(optimizer, [w])
    np.testing.assert_allclose(w.numpy(), np.full(4, 2.0 * (1 - 0.1 * 0.5)), rtol=1e-6)


def test_weight_decay_exclusions_survive_serialization_and_keras_file(tmp_path):
    # Keras keeps `exclude_from_weight_decay` out of AdamW's config: a reloaded compiled
    # model decayed biases and LayerNorm again until make_optimizer used tfdistil's AdamW.
    optimizer = make_optimizer(0.1, total_steps=10, warmup_ratio=0.0, weight_decay=0.5)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    restored = keras.optimizers.deserialize(json.loads(json.dumps(keras.optimizers.serialize(optimizer))))

    assert isinstance(restored, AdamW)
    kernel = keras.Variable(np.ones(3, "float32"), name="kernel")
    bias = keras.Variable(np.ones(3, "float32"), name="bias")
    gamma = keras.Variable(np.ones(3, "float32"), name="gamma")
    one_decay_only_step(restored, [kernel, bias, gamma])
    np.testing.assert_allclose(kernel.numpy(), np.full(3, 0.95), rtol=1e-6)
    np.testing.assert_array_equal(bias.numpy(), np.ones(3))
    np.testing.assert_array_equal(gamma.numpy(), np.ones(3))

    model = tiny_classifier("bert")
    model.compile(optimizer=make_optimizer(0.1, total_steps=10, warmup_ratio=0.0, weight_decay=0.5),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.optimizer.build(model.trainable_variables)
    path = tmp_path / "m.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.optimizer, AdamW)
    variables = reloaded.trainable_variables
    randomise(variables)
    before = one_decay_only_step(reloaded.optimizer, variables)
    for v in variables:
        factor = 0.95 if v.name in DECAYED else 1.0
        np.testing.assert_allclose(v.numpy(), before[id(v)] * factor, rtol=1e-6, err_msg=v.path)


# ----- make_optimizer: global gradient clipping -----------------------------------------


def adam_first_step_by_hand(grad, lr, beta_2=ADAM_BETA_2, eps=BERT_EPSILON):
    """Keras/TF Adam's first update (epsilon added to sqrt(v), bias corrections folded into
    the step size): m = (1-b1) g, v = (1-b2) g^2, step = lr sqrt(1-b2)/(1-b1), so
    delta = -lr sqrt(1-b2) g / (sqrt(1-b2) |g| + eps)."""
    grad = np.asarray(grad, np.float64)
    s = math.sqrt(1 - beta_2)
    return -lr * s * grad / (s * np.abs(grad) + eps)


@pytest.mark.parametrize("clipnorm", [1.0, 0.5, None])
def test_gradients_clipped_to_global_norm(clipnorm):
    # A huge gradient on one element: with global clipping the small elements shrink to
    # ~1e-6, the size of Adam's epsilon, so their update drops from ~lr to a fraction of it.
    # Two variables: per-variable clipping would leave `b` alone and give another update.
    lr = 0.01
    g_a, g_b = np.array([1e6, 1.0], np.float32), np.array([-2.0], np.float32)
    norm = math.sqrt(1e12 + 1.0 + 4.0)
    scale = 1.0 if clipnorm is None else min(1.0, clipnorm / norm)
    a = keras.Variable(np.zeros(2, "float32"), name="a")
    b = keras.Variable(np.zeros(1, "float32"), name="b")  # zeros: weight decay adds nothing
    optimizer = make_optimizer(lr, total_steps=10, warmup_ratio=0.0, clipnorm=clipnorm)
    assert optimizer.global_clipnorm == clipnorm and optimizer.clipnorm is None
    optimizer.apply([tf.constant(g_a), tf.constant(g_b)], [a, b])
    np.testing.assert_allclose(a.numpy(), adam_first_step_by_hand(g_a * scale, lr), rtol=1e-4)
    np.testing.assert_allclose(b.numpy(), adam_first_step_by_hand(g_b * scale, lr), rtol=1e-4)
    if clipnorm is not None:
        # The clipped small elements moved by far less than lr (hand values: ~0.03 lr, ~0.06 lr).
        assert abs(a.numpy()[1]) < 0.1 * lr and abs(b.numpy()[0]) < 0.1 * lr
    else:
        assert abs(a.numpy()[1]) > 0.9 * lr


def adamw_by_hand(weights, grads_per_step, lr, wd, decayed, amsgrad=False, beta_1=0.9, beta_2=ADAM_BETA_2,
                  eps=BERT_EPSILON):
    """Decoupled weight decay (w -= lr wd w, on `decayed` names) then Adam, in float64, step after step."""
    w = {k: np.asarray(v, np.float64).copy() for k, v in weights.items()}
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(x) for k, x in w.items()}
    v_hat = {k: np.zeros_like(x) for k, x in w.items()}
    for t, grads in enumerate(grads_per_step, start=1):
        for k, g in grads.items():
            g = np.asarray(g, np.float64)
            if k in decayed:
                w[k] -= lr * wd * w[k]
            m[k] = beta_1 * m[k] + (1 - beta_1) * g
            v[k] = beta_2 * v[k] + (1 - beta_2) * g * g
            v_hat[k] = np.maximum(v_hat[k], v[k])
            alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
            w[k] -= alpha * m[k] / (np.sqrt(v_hat[k] if amsgrad else v[k]) + eps)
    return w


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_matches_adamw_by_hand_with_dense_and_sparse_gradients(amsgrad):
    """tfdistil's AdamW (one fused kernel per variable; Keras' path for amsgrad) against the
    formula, three steps with an embedding's sparse (IndexedSlices) gradient among them."""
    r = np.random.default_rng(7)
    init = {"kernel": r.normal(size=(3, 4)), "bias": r.normal(size=(4,)), "embeddings": r.normal(size=(5, 2))}
    variables = {k: keras.Variable(v.astype("float32"), name=k) for k, v in init.items()}
    steps = []
    for _ in range(3):
        rows = np.array([0, 3, 3])  # a repeated row: its slices add up
        values = r.normal(size=(3, 2))
        dense_embedding = np.zeros((5, 2))
        np.add.at(dense_embedding, rows, values)
        steps.append(({"kernel": r.normal(size=(3, 4)), "bias": r.normal(size=(4,)),
                       "embeddings": dense_embedding}, rows, values))
    lr, wd = 0.05, 0.1
    optimizer = AdamW(learning_rate=lr, weight_decay=wd, epsilon=BERT_EPSILON, amsgrad=amsgrad)
    order = list(variables)
    for grads, rows, values in steps:
        tf_grads = [tf.constant(grads["kernel"], tf.float32), tf.constant(grads["bias"], tf.float32),
                    tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(rows), tf.constant([5, 2]))]
        optimizer.apply(tf_grads, [variables[k] for k in order])
    expected = adamw_by_hand(init, [g for g, _, _ in steps], lr, wd, decayed={"kernel", "embeddings"},
                             amsgrad=amsgrad)
    for k in order:
        np.testing.assert_allclose(variables[k].numpy(), expected[k], rtol=2e-5, atol=2e-6, err_msg=k)
        assert np.abs(variables[k].numpy() - init[k]).max() > 0.05  # three steps of ~lr each moved it


ADAMW_UNDER_MIRRORED = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tfdistil.training import AdamW
results = {}
for name, strategy in (("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
                       ("single", tf.distribute.get_strategy())):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), keras.layers.Dense(3)])
        model.compile(optimizer=AdamW(learning_rate=0.05, weight_decay=0.1),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(32, 6)).astype("float32"), rng.integers(0, 3, 32)
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    results[name] = model.get_weights()
np.savez(sys.argv[1], **{f"{n}_{i}": w for n, ws in results.items() for i, w in enumerate(ws)})
"""


def test_adamw_under_mirrored_strategy_matches_one_device(tmp_path):
    # A fresh process: the two logical CPU devices must exist before TensorFlow starts.
    import subprocess
    import sys

    script, out = tmp_path / "mirrored_adamw.py", tmp_path / "weights.npz"
    script.write_text(ADAMW_UNDER_MIRRORED)
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    weights = np.load(out)
    count = len(weights.files) // 2
    assert count == 4
    moved = 0.0
    for i in range(count):
        # Each replica's AdamW update (fused kernel) of the all-reduced gradient = one device's.
        np.testing.assert_allclose(weights[f"mirrored_{i}"], weights[f"single_{i}"], rtol=1e-4, atol=1e-5)
        moved = max(moved, float(np.abs(weights[f"single_{i}"]).max()))
    assert moved > 0.05


# ----- precision ------------------------------------------------------------------------


def fake_devices(gpu):
    def list_physical_devices(device_type=None):
        devices = [tf.config.PhysicalDevice(name="/physical_device:CPU:0", device_type="CPU")]
        if gpu:
            devices.append(tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU"))
        return [d for d in devices if device_type is None or d.device_type == device_type]

    return list_physical_devices


def test_policies_are_the_three_documented_ones():
    assert tuple(POLICIES) == ("float32", "mixed_bfloat16", "mixed_float16")


@pytest.mark.parametrize("gpu,bf16", [(True, True), (False, False)])
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_explicit_precision_passes_through(policy, gpu, bf16, monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", fake_devices(gpu))
    monkeypatch.setattr(precision_module, "cpu_supports_bfloat16", lambda: bf16)
    assert resolve_precision(policy) == (policy, "requested")


@pytest.mark.parametrize("bad", ["float16", "bfloat16", "Float32", "fp32", "", "mixed_float32"])
def test_bad_precision_lists_the_choices(bad):
    with pytest.raises(ValueError) as info:
        resolve_precision(bad)
    message = str(info.value)
    assert repr(bad) in message
    for choice in ("float32", "mixed_bfloat16", "mixed_float16", "auto"):
        assert choice in message


@pytest.mark.parametrize("request_", [None, "auto"])
@pytest.mark.parametrize(
    "gpu,bf16,expected",
    [
        (True, True, "mixed_float16"),  # a GPU wins over the CPU
        (True, False, "mixed_float16"),
        (False, True, "mixed_bfloat16"),
        (False, False, "float32"),
    ],
)
def test_auto_precision_picks_by_device(request_, gpu, bf16, expected, monkeypatch):
    monkeypatch.setattr(tf.config, "list_physical_devices", fake_devices(gpu))
    monkeypatch.setattr(precision_module, "cpu_supports_bfloat16", lambda: bf16)
    policy, reason = resolve_precision(request_)
    assert policy == expected
    assert reason.startswith("auto")


class _FakeCpuinfo:
    def __init__(self, text):
        self.text = text

    def __call__(self, path, *args, **kwargs):
        assert path == "/proc/cpuinfo"
        if self.text is None:
            raise OSError("no /proc here")
        import io

        return io.StringIO(self.text)


@pytest.mark.parametrize(
    "cpuinfo,expected",
    [
        ("flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n", True),
        ("flags\t\t: fpu sse avx2 amx_bf16 amx_tile\n", True),
        ("flags\t\t: fpu sse avx2 avx512f avx512_vnni\n", False),
        (None, False),  # no /proc/cpuinfo (macOS, Windows)
    ],
)
def test_cpu_supports_bfloat16_reads_cpu_flags(cpuinfo, expected, monkeypatch):
    # A module-level `open` shadows the builtin for that module only.
    monkeypatch.setattr(precision_module, "open", _FakeCpuinfo(cpuinfo), raising=False)
    assert cpu_supports_bfloat16() is expected


# ----- run_callbacks --------------------------------------------------------------------


def tiny_dense_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    return model


def toy_data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def test_tensorboard_logs_read_back(tmp_path):
    model = tiny_dense_model()
    x, y = toy_data(8)
    # 8 examples, batch 4: 2 steps an epoch, 3 epochs = 6 steps; warm-up round(6/6) = 1 step.
    model.compile(optimizer=make_optimizer(0.1, total_steps=6, warmup_ratio=1 / 6),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x, y, batch_size=4, epochs=3, validation_data=(x, y), verbose=0, shuffle=False,
                        callbacks=run_callbacks(str(tmp_path), "m"))
    logs = tmp_path / "logs" / "m"
    train = read_tensorboard_scalars(logs / "train")
    val = read_tensorboard_scalars(logs / "validation")

    # What Keras 3.15's TensorBoard callback writes with update_freq="epoch".
    assert set(train) == {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}
    assert set(val) == {"epoch_loss", "epoch_accuracy", "evaluation_loss_vs_iterations",
                        "evaluation_accuracy_vs_iterations"}
    for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
        assert [step for step, _ in train[tag]] == [0, 1, 2], tag
    for tag in ("epoch_loss", "epoch_accuracy"):
        assert [step for step, _ in val[tag]] == [0, 1, 2], tag
    # evaluation_*_vs_iterations are indexed by optimizer step (2 per epoch).
    assert [step for step, _ in val["evaluation_loss_vs_iterations"]] == [2, 4, 6]

    # Learning rate at the end of each epoch (iterations 2, 4, 6), by hand:
    # 0.1 - 0.1 * (s - 1) / 5 -> 0.08, 0.04, 0.0.
    np.testing.assert_allclose([v for _, v in train["epoch_learning_rate"]], [0.08, 0.04, 0.0], atol=1e-7)
    # The files hold the same numbers fit() reported, and accuracies are fractions of 8.
    np.testing.assert_allclose([v for _, v in train["epoch_loss"]], history.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in val["epoch_loss"]], history.history["val_loss"], rtol=1e-6)
    for _, v in train["epoch_accuracy"] + val["epoch_accuracy"]:
        assert v * 8 == pytest.approx(round(v * 8), abs=1e-5)
    # A finished run removes its backup.
    assert not (tmp_path / "backup" / "m").exists()


def test_run_callbacks_composition(tmp_path):
    default = run_callbacks(str(tmp_path), "a")
    assert [type(c).__name__ for c in default] == ["TensorBoard", "BackupAndRestore"]
    assert default[1].backup_dir == os.path.join(str(tmp_path), "backup", "a")
    full = run_callbacks(str(tmp_path), "a", monitor="val_loss", mode="min", patience=3)
    stop = full[-1]
    assert isinstance(stop, keras.callbacks.EarlyStopping)
    assert (stop.monitor, stop.patience, stop.restore_best_weights) == ("val_loss", 3, True)
    assert [type(c).__name__ for c in run_callbacks(str(tmp_path), "a", backup=False)] == ["TensorBoard"]


class RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.at_epoch_end = []

    def on_epoch_end(self, epoch, logs=None):
        self.at_epoch_end.append([np.array(w) for w in self.model.get_weights()])


def one_feature_classifier():
    """The compiled 1-feature, 2-class model of the early-stopping tests (kernel [[1, 0]], zero
    bias, SGD with learning rate 1): see test_early_stopping_restores_best_weights."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((1,)),
        keras.layers.Dense(2, kernel_initializer=keras.initializers.Constant([[1.0, 0.0]]),
                           bias_initializer="zeros"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def assert_epoch_1_weights_restored(model, record):
    """The one_feature_classifier holds its epoch-1 weights: kernel unchanged, bias (-0.5, 0.5) by hand."""
    kernel, bias = model.get_weights()
    np.testing.assert_allclose(kernel, [[1.0, 0.0]])
    np.testing.assert_allclose(bias, [-0.5, 0.5], rtol=1e-6)
    for restored, epoch1 in zip(model.get_weights(), record.at_epoch_end[0]):
        np.testing.assert_array_equal(restored, epoch1)


def test_early_stopping_restores_best_weights(tmp_path):
    """A 1-feature, 2-class model: kernel [[1, 0]] (logit_0 = x + b0, logit_1 = b1), predicts 1
    iff d = b1 - b0 > x. Training on x = 0, y = 1 leaves the kernel alone (its gradient is x
    times something) and raises d with SGD(lr=1): d <- d + 2 (1 - sigmoid(d)) -> 1.0 after
    epoch 1, 1.538 after epoch 2. Validation (x=-1, y=1), (x=1.25, y=0) is all right at d=1
    and half wrong from d=1.538 on: val_accuracy 1.0 then 0.5, so patience 1 stops after
    epoch 2 and must give back the epoch-1 weights, bias (-0.5, 0.5) by hand."""
    model = one_feature_classifier()
    record = RecordWeights()
    x_train, y_train = np.zeros((1, 1), "float32"), np.ones(1, "int32")
    x_val, y_val = np.array([[-1.0], [1.25]], "float32"), np.array([1, 0], "int32")
    history = model.fit(x_train, y_train, epochs=10, batch_size=1, verbose=0,
                        validation_data=(x_val, y_val),
                        callbacks=[*run_callbacks(str(tmp_path), "es", patience=1), record])

    assert history.history["val_accuracy"] == [1.0, 0.5]  # stopped after epoch 2 of 10
    assert_epoch_1_weights_restored(model, record)
    d2 = 1.0 + 2 * (1 - 1 / (1 + math.exp(-1.0)))
    np.testing.assert_allclose(record.at_epoch_end[1][1], [-d2 / 2, d2 / 2], rtol=1e-5)


# ----- BackupAndRestore: resume after a killed process ----------------------------------

RESUME_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np
    import keras
    from tfdistil.training import make_optimizer, run_callbacks

    run_dir, kill_after_epoch = sys.argv[1], int(sys.argv[2])
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    # 16 examples, batch 4: 4 steps an epoch, 16 steps in 4 epochs.
    model.compile(optimizer=make_optimizer(0.05, total_steps=16, warmup_ratio=0.25),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    log = open(os.path.join(run_dir, "events.jsonl"), "a")

    class Record(keras.callbacks.Callback):
        def _write(self, event, epoch=None):
            log.write(json.dumps({
                "pid": os.getpid(), "event": event, "epoch": epoch,
                "iterations": int(self.model.optimizer.iterations.numpy()),
                "weights": [w.tolist() for w in self.model.get_weights()],
            }) + "\\n")
            log.flush()

        def on_epoch_begin(self, epoch, logs=None):
            self._write("begin", epoch)

        def on_epoch_end(self, epoch, logs=None):
            self._write("end", epoch)

        def on_train_end(self, logs=None):
            self._write("train_end")

    class Kill(keras.callbacks.Callback):
        # After run_callbacks' BackupAndRestore in the list, so the backup is on disk.
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == kill_after_epoch:
                os._exit(1)

    model.fit(x, y, batch_size=4, epochs=4, validation_data=(x, y), verbose=0, shuffle=False,
              callbacks=[*run_callbacks(run_dir, "m"), Record(), Kill()])
    """
)


def _events(run_dir):
    with open(os.path.join(run_dir, "events.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_backup_and_restore_resumes_after_kill(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(RESUME_SCRIPT)
    run_dir, reference_dir = tmp_path / "run", tmp_path / "reference"
    run_dir.mkdir()
    reference_dir.mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")

    def start(directory, kill_after_epoch):
        return subprocess.Popen(
            [sys.executable, str(script), str(directory), str(kill_after_epoch)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(tmp_path),
        )

    # The uninterrupted reference runs alongside the killed run (2 cores).
    reference, killed = start(reference_dir, 0), start(run_dir, 2)
    killed_out, _ = killed.communicate(timeout=180)
    assert killed.returncode == 1, killed_out
    backup = run_dir / "backup" / "m"
    assert (backup / "latest.weights.h5").is_file() and (backup / "training_metadata.json").is_file()
    first = _events(run_dir)
    assert [(e["event"], e["epoch"]) for e in first] == [("begin", 0), ("end", 0), ("begin", 1), ("end", 1)]

    resumed = start(run_dir, 0)
    resumed_out, _ = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, resumed_out
    reference_out, _ = reference.communicate(timeout=180)
    assert reference.returncode == 0, reference_out

    second = [e for e in _events(run_dir) if e["pid"] != first[0]["pid"]]
    # Starts at epoch 3 (index 2) and finishes epoch 4.
    assert [(e["event"], e["epoch"]) for e in second] == [
        ("begin", 2), ("end", 2), ("begin", 3), ("end", 3), ("train_end", None)
    ]
    # Restored: the weights the killed run had after epoch 2, and the optimizer's step
    # count (2 epochs x 4 steps), so the learning-rate schedule continues where it was.
    resume_point = second[0]
    assert resume_point["iterations"] == 8
    for restored, saved in zip(resume_point["weights"], first[-1]["weights"]):
        np.testing.assert_array_equal(restored, saved)
    assert not np.allclose(resume_point["weights"][0], first[0]["weights"][0])  # not the fresh init
    # Adam's moments came back too: the resumed run ends where the uninterrupted one does.
    reference_end = [e for e in _events(reference_dir) if e["event"] == "train_end"][0]
    assert second[-1]["iterations"] == reference_end["iterations"] == 16
    for got, want in zip(second[-1]["weights"], reference_end["weights"]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # The finished run deleted its backup.
    assert not backup.exists()
