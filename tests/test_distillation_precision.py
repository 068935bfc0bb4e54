"""Distillation under reduced precision: loss scaling with mixed_float16 (the Distiller
takes the student's policy, so compile wraps the optimizer), underflow rescued, overflow
skipped, loss arithmetic in float32; mixed_bfloat16 trains.
"""
import numpy as np
import pytest

import keras
import tensorflow as tf

from harness import np_cosine
from tfdistil.distillation import Distiller
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier

VOCAB, SEQ, BATCH, NUM_CLASSES = 40, 6, 4, 3
FLOAT16_SMALLEST_SUBNORMAL = 2.0**-24  # ~6e-8; half of it rounds to zero


def models(dtype, student_hidden=16):
    keras.utils.set_random_seed(21)
    teacher = TextClassifier(
        BertBackbone(VOCAB, 2, 2, 16, 32, dropout=0.0, max_sequence_length=16, dtype=dtype),
        NUM_CLASSES, dropout=0.0,
    )
    student = TextClassifier(
        DistilBertBackbone(VOCAB, 1, 2, student_hidden, 32, dropout=0.0, max_sequence_length=16, dtype=dtype),
        NUM_CLASSES, dropout=0.0,
    )
    return teacher, student


def batch(seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array([SEQ, 4, 5, 3])
    real = np.arange(SEQ)[None, :] < lengths[:, None]
    token_ids = np.where(real, rng.integers(2, VOCAB, (BATCH, SEQ)), 0)
    token_ids[:, 0] = 1
    x = {
        "token_ids": token_ids.astype("int32"),
        "segment_ids": np.zeros((BATCH, SEQ), "int32"),
        "padding_mask": real.astype("int32"),
    }
    return x, rng.integers(0, NUM_CLASSES, BATCH).astype("int32")


def dense(grad):
    """A gradient as a numpy array (embedding gradients come as IndexedSlices)."""
    return np.asarray(tf.convert_to_tensor(grad))


def student_weights(student):
    return [np.array(w) for w in student.get_weights()]


# ----- mixed_float16 ----------------------------------------------------------------------------
def test_distiller_takes_student_policy_and_compile_wraps_optimizer():
    teacher, student = models("mixed_float16")
    distiller = Distiller(teacher, student)
    assert distiller.dtype_policy.name == "mixed_float16"
    distiller.compile(keras.optimizers.SGD(0.1))
    assert isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
    # A LossScaleOptimizer given by the user is kept, not wrapped twice.
    own = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=8.0)
    distiller.compile(own)
    assert distiller.optimizer is own
    # float32 models: no loss scaling.
    teacher32, student32 = models("float32")
    plain = Distiller(teacher32, student32)
    plain.compile(keras.optimizers.SGD(0.1))
    assert not isinstance(plain.optimizer, keras.optimizers.LossScaleOptimizer)


def np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("dtype", ["mixed_float16", "mixed_bfloat16"])
def test_loss_terms_are_float32_arithmetic(dtype):
    """The models' hidden states are half precision; the loss terms must be computed from
    them in float32 (a float16 cosine or KL would be off by ~1e-3)."""
    teacher, student = models(dtype)
    rng = np.random.default_rng(22)
    for model in (teacher, student):
        model.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
    distiller = Distiller(
        teacher, student, alpha=0.4, temperature=2.0, hidden_cosine_weight=1.0, attention_weight=1.0,
    )
    x, y = batch(1)
    t_out = teacher.intermediate_model(True, True)(x)
    s_out = student.intermediate_model(True, True)(x)
    half = "float16" if dtype == "mixed_float16" else "bfloat16"
    assert s_out["hidden_states"][-1].dtype == half and t_out["hidden_states"][0].dtype == half
    assert s_out["logits"].dtype == "float32"
    terms = distiller.compute_loss_terms(x, tf.constant(y), None, t_out, s_out)
    for name, value in terms.items():
        assert value.dtype == tf.float32, name
        assert np.isfinite(float(value)), name

    # numpy (float64) from the very same half-precision arrays.
    f64 = lambda t: np.asarray(tf.cast(t, tf.float32), np.float64)  # noqa: E731
    pad = x["padding_mask"].astype(np.float64)
    log_pt, log_ps = np_log_softmax(f64(t_out["logits"]) / 2.0), np_log_softmax(f64(s_out["logits"]) / 2.0)
    soft = 4.0 * (np.exp(log_pt) * (log_pt - log_ps)).sum(-1).mean()
    cos_terms = []
    for s_i, t_i in [(0, 0), (1, 1)]:  # embeddings, then student layer 0 <- teacher layer 0
        a, b = f64(s_out["hidden_states"][s_i]), f64(t_out["hidden_states"][t_i])
        cos = np_cosine(a, b, pad)
        cos_terms.append(((1 - cos) * pad).sum() / pad.sum())
    p_t, p_s = f64(t_out["attention_scores"][0]), f64(s_out["attention_scores"][0])
    real_key = pad[:, None, None, :] > 0
    kl = np.where(real_key, p_t * (np.log(np.where(real_key, p_t, 1)) - np.log(np.where(real_key, p_s, 1))), 0)
    att = (kl.sum(-1).mean(1) * pad).sum() / pad.sum()
    np.testing.assert_allclose(float(terms["soft_loss"]), soft, rtol=1e-5)
    np.testing.assert_allclose(float(terms["hidden_cosine_loss"]), np.mean(cos_terms), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(terms["attention_loss"]), att, rtol=1e-4, atol=1e-6)


def test_loss_scaling_rescues_float16_underflow():
    teacher, student = models("mixed_float16")
    distiller = Distiller(teacher, student, alpha=0.5, temperature=2.0)
    x, y = batch(2)
    # A tiny sample weight puts every d(loss)/d(logit) near 1e-9: below half of float16's
    # smallest subnormal, so the float16 backward pass rounds it to zero.
    sw = np.full(BATCH, 2e-8, "float32")

    # No scaling: every gradient is exactly zero.
    with tf.GradientTape() as tape:
        t_out = {"logits": teacher(x, training=False)}
        s_out = {"logits": student(x, training=True)}
        loss = distiller.compute_loss_terms(x, tf.constant(y), tf.constant(sw), t_out, s_out)["loss"]
    logit_grad, *grads = tape.gradient(loss, [s_out["logits"]] + student.trainable_variables)
    assert float(loss) > 0
    logit_grad = np.abs(np.asarray(logit_grad))
    assert 0 < logit_grad.max() < FLOAT16_SMALLEST_SUBNORMAL / 2  # float32: there, but too small
    assert all(g is not None and not np.any(dense(g)) for g in grads)

    distiller.compile(keras.optimizers.SGD(learning_rate=1e5))
    optimizer = distiller.optimizer
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    # Scaled by the optimizer inside the tape (as train_step does): the gradients survive.
    with tf.GradientTape() as tape:
        s_out = {"logits": student(x, training=True)}
        loss = distiller.compute_loss_terms(x, tf.constant(y), tf.constant(sw), t_out, s_out)["loss"]
        scaled = optimizer.scale_loss(loss)
    scaled_grads = tape.gradient(scaled, student.trainable_variables)
    assert all(np.all(np.isfinite(dense(g))) for g in scaled_grads)
    assert sum(bool(np.any(dense(g))) for g in scaled_grads) > 0

    before = student_weights(student)
    distiller.fit(x, y, sample_weight=sw, batch_size=BATCH, epochs=1, verbose=0)
    after = student_weights(student)
    changed = [name for name, a, b in zip([v.path for v in student.weights], before, after) if not np.array_equal(a, b)]
    assert "classifier/kernel" in changed and "classifier/bias" in changed
    assert int(optimizer.iterations) == 1
    assert float(optimizer.dynamic_scale) == 2.0**15  # a finite step: the scale is kept


def test_non_finite_step_is_skipped():
    teacher, student = models("mixed_float16")
    distiller = Distiller(teacher, student, alpha=0.5, temperature=2.0, attention_weight=1.0)
    # 2**40 times any gradient overflows float16 (max 65504): the step is not finite.
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0**40)
    distiller.compile(optimizer)
    x, y = batch(3)
    before = student_weights(student)
    history = distiller.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    for a, b in zip(before, student_weights(student)):
        np.testing.assert_array_equal(a, b)
    assert float(optimizer.dynamic_scale) == 2.0**39
    assert int(optimizer.iterations) == 0
    # The reported loss is the unscaled one: the loss of the (unchanged) weights on the batch, as
    # evaluate computes it without any loss scale (dropout is off), not 2**40 times it.
    unscaled = distiller.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)["loss"]
    assert 0 < unscaled < 100
    np.testing.assert_allclose(history.history["loss"][0], unscaled, rtol=1e-3)
    # Once the scale is sane, steps apply again.
    optimizer.dynamic_scale.assign(2.0**10)
    distiller.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, student_weights(student)))
    assert int(optimizer.iterations) == 1


# ----- mixed_bfloat16 --------------------------------------------------------------------------
def test_mixed_bfloat16_fit():
    teacher, student = models("mixed_bfloat16", student_hidden=8)
    rng = np.random.default_rng(23)
    teacher.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in teacher.get_weights()])
    distiller = Distiller(
        teacher, student, alpha=0.5, temperature=2.0, hidden_mse_weight=1.0, attention_weight=1.0,
    )
    assert distiller.dtype_policy.name == "mixed_bfloat16"
    distiller.compile(keras.optimizers.Adam(1e-2))
    assert not isinstance(distiller.optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(v.dtype == "float32" for v in distiller.trainable_variables)
    assert all(v.dtype == "float32" for v in teacher.weights)
    x, y = batch(4)
    history = distiller.fit(x, y, batch_size=BATCH, epochs=8, verbose=0).history
    for name in ("loss", "hard_loss", "soft_loss", "hidden_mse_loss", "attention_loss"):
        assert np.all(np.isfinite(history[name])), name
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert all(v.dtype == "float32" for v in distiller.trainable_variables)
