"""Distillation: every loss term against numpy by hand, the frozen teacher, alpha=1 as plain
fine-tuning, Hinton's T^2, a toy task on which distillation must beat hard labels, the
teacher-logit cache, student init from teacher layers, errors, saving, XLA.

Golden values are computed here in numpy (float64) from the models' own logits, hidden
states and attention probabilities; nothing is copied from the code under test.
"""
import numpy as np
import pytest

import keras
import tensorflow as tf

from harness import np_cosine
from tfdistil.distillation import (
    TEACHER_LOGITS,
    AttentionKL,
    DistillationTerm,
    Distiller,
    HardLabels,
    HiddenCosine,
    HiddenMSE,
    PerExample,
    PerLabelledToken,
    SoftTargets,
    cache_teacher_outputs,
    default_layer_map,
    init_student_from_teacher,
)
from tfdistil.models import BertBackbone, DistilBertBackbone, MaskedLM, TextClassifier, TokenClassifier

VOCAB = 40
SEQ = 7
BATCH = 4
NUM_CLASSES = 3
IGNORE = -100


# ----- tiny models and data -------------------------------------------------------------
def bert(num_layers=2, hidden_dim=16, num_heads=2, vocab=VOCAB, max_len=16, dtype=None):
    return BertBackbone(
        vocab, num_layers, num_heads, hidden_dim, 2 * hidden_dim, dropout=0.0,
        max_sequence_length=max_len, dtype=dtype,
    )


def distilbert(num_layers=1, hidden_dim=16, num_heads=2, vocab=VOCAB, max_len=16, dtype=None):
    return DistilBertBackbone(
        vocab, num_layers, num_heads, hidden_dim, 2 * hidden_dim, dropout=0.0,
        max_sequence_length=max_len, dtype=dtype,
    )


def task(kind, backbone, num_classes=NUM_CLASSES):
    if kind == "sequence":
        return TextClassifier(backbone, num_classes, dropout=0.0)
    if kind == "token":
        return TokenClassifier(backbone, num_classes, dropout=0.0)
    return MaskedLM(backbone)


def jitter(model, rng, scale=0.3):
    """Random O(1) weights: the 0.02 init gives near-zero logits and near-uniform
    attention, which would make every KL tiny and every comparison weak."""
    model.set_weights([w + rng.normal(0.0, scale, w.shape).astype(w.dtype) for w in model.get_weights()])


def make_inputs(rng, batch=BATCH, seq=SEQ, vocab=VOCAB, lengths=None):
    if lengths is None:
        lengths = np.concatenate([[seq], rng.integers(3, seq, batch - 1)])
    real = np.arange(seq)[None, :] < np.asarray(lengths)[:, None]
    token_ids = rng.integers(2, vocab, (batch, seq))
    token_ids[:, 0] = 1
    segment_ids = (np.arange(seq)[None, :] >= np.asarray(lengths)[:, None] // 2).astype("int32")
    return {
        "token_ids": np.where(real, token_ids, 0).astype("int32"),
        "segment_ids": np.where(real, segment_ids, 0).astype("int32"),
        "padding_mask": real.astype("int32"),
    }


def make_labels(kind, rng, x, num_classes=NUM_CLASSES):
    batch, seq = x["token_ids"].shape
    if kind == "sequence":
        return rng.integers(0, num_classes, batch).astype("int32")
    real = x["padding_mask"] > 0
    if kind == "token":
        # Real class labels on padding too: the padding mask alone must exclude them.
        y = rng.integers(0, num_classes, (batch, seq))
        y[:, 0] = IGNORE  # [CLS]
        y[rng.random((batch, seq)) < 0.2] = IGNORE
        return y.astype("int32")
    masked = (rng.random((batch, seq)) < 0.4) & real
    masked[0, 1] = True
    return np.where(masked, x["token_ids"], IGNORE).astype("int32")


def to_numpy(out):
    return tf.nest.map_structure(lambda t: np.asarray(t, dtype=np.float64), out)


# ----- the reference, in numpy ------------------------------------------------------------
def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def reference_terms(
    x, y, sample_weight, t_out, s_out, *, alpha, temperature, layer_map,
    cos_w=0.0, mse_w=0.0, att_w=0.0, projections=None,
):
    """The loss as the Distiller's docstring defines it, from the models' arrays."""
    t_logits, s_logits = t_out["logits"], s_out["logits"]
    pad = x["padding_mask"].astype(np.float64)
    sw = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    if s_logits.ndim == 2:  # one prediction per example; -100: no hard label, soft terms only
        valid = np.ones(y.shape[0])
        labelled = valid * (y != IGNORE)
        w = valid if sw is None else valid * sw
    else:  # one per labelled, non-padding token
        valid = (y != IGNORE) * pad
        labelled = valid
        w = valid if sw is None else valid * (sw[:, None] if sw.ndim == 1 else sw)
    count = max(valid.sum(), 1.0)

    hard = 0.0
    log_p = np_log_softmax(s_logits)
    for idx in zip(*np.nonzero(labelled)):
        hard += w[idx] * -log_p[idx][y[idx]]
    hard /= count

    T = temperature
    log_pt, log_ps = np_log_softmax(t_logits / T), np_log_softmax(s_logits / T)
    kl = (np.exp(log_pt) * (log_pt - log_ps)).sum(-1)
    soft = T**2 * (w * kl).sum() / count

    terms = {"hard_loss": hard, "soft_loss": soft}
    total = alpha * hard + (1 - alpha) * soft

    # Hidden/attention terms: every real token, weighted by the sample weight.
    if sw is None:
        tok_w = pad
    else:
        tok_w = pad * (sw[:, None] if sw.ndim == 1 else sw)
    tok_count = pad.sum()
    pairs = [(0, 0)] + [(s + 1, t + 1) for s, t in enumerate(layer_map)]
    if cos_w or mse_w:
        cos_terms, mse_terms = [], []
        for s_i, t_i in pairs:
            s_h, t_h = s_out["hidden_states"][s_i], t_out["hidden_states"][t_i]
            if projections:
                kernel, bias = projections[s_i]
                s_h = s_h @ kernel + bias
            cos = np_cosine(s_h, t_h, pad)
            cos_terms.append((tok_w * (1 - cos)).sum() / tok_count)
            mse_terms.append((tok_w * ((s_h - t_h) ** 2).mean(-1)).sum() / tok_count)
        if cos_w:
            terms["hidden_cosine_loss"] = np.mean(cos_terms)
            total += cos_w * terms["hidden_cosine_loss"]
        if mse_w:
            terms["hidden_mse_loss"] = np.mean(mse_terms)
            total += mse_w * terms["hidden_mse_loss"]
    if att_w:
        layer_terms = []
        key_real = pad[:, None, None, :] > 0
        for s_i, t_i in enumerate(layer_map):
            p_t = t_out["attention_scores"][t_i]  # (batch, heads, query, key)
            p_s = s_out["attention_scores"][s_i]
            # Padded keys must get no attention at all.
            assert np.abs(np.where(key_real, 0.0, p_t)).max() < 1e-12
            if p_t.shape[1] != p_s.shape[1]:  # different head counts: compare head averages
                p_t, p_s = p_t.mean(1, keepdims=True), p_s.mean(1, keepdims=True)
            safe_t, safe_s = np.where(key_real, p_t, 1.0), np.where(key_real, p_s, 1.0)
            kl_rows = np.where(key_real, p_t * (np.log(safe_t) - np.log(safe_s)), 0.0).sum(-1)
            per_query = kl_rows.mean(1)  # mean over heads: (batch, query)
            layer_terms.append((tok_w * per_query).sum() / tok_count)
        terms["attention_loss"] = np.mean(layer_terms)
        total += att_w * terms["attention_loss"]
    terms["loss"] = total
    return terms


# ----- 1. every term against numpy ----------------------------------------------------------
TERM_CASES = [
    # kind, sample weights, term weights, student (hidden_dim, num_heads)
    ("sequence", None, {}, (16, 2)),
    ("sequence", "example", {}, (16, 2)),
    ("sequence", None, dict(cos_w=0.7, mse_w=0.3, att_w=0.5), (16, 2)),
    ("sequence", "example", dict(mse_w=0.3, att_w=0.5), (8, 2)),  # through the projection
    ("token", None, dict(cos_w=0.7, att_w=0.5), (16, 2)),
    ("token", "example", dict(mse_w=0.4, att_w=0.2), (8, 2)),
    ("token", "token", dict(cos_w=0.2, mse_w=0.4, att_w=0.3), (16, 4)),  # head averages
    ("mlm", None, {}, (16, 2)),
    ("mlm", None, dict(mse_w=0.5, att_w=0.5), (8, 2)),
    ("mlm", "example", dict(cos_w=1.0, att_w=0.5), (16, 2)),
]


@pytest.mark.parametrize("kind,sw_kind,weights,student_size", TERM_CASES)
def test_loss_terms_match_numpy(kind, sw_kind, weights, student_size):
    rng = np.random.default_rng(TERM_CASES.index((kind, sw_kind, weights, student_size)))
    keras.utils.set_random_seed(1)
    teacher = task(kind, bert(num_layers=3))
    student = task(kind, distilbert(num_layers=2, hidden_dim=student_size[0], num_heads=student_size[1]))
    jitter(teacher, rng)
    jitter(student, rng)
    layer_map = [1, 2]  # not the default, so the map is really followed
    alpha, temperature = 0.3, 2.5
    distiller = Distiller(
        teacher, student, alpha=alpha, temperature=temperature, layer_map=layer_map,
        hidden_cosine_weight=weights.get("cos_w", 0.0), hidden_mse_weight=weights.get("mse_w", 0.0),
        attention_weight=weights.get("att_w", 0.0),
    )
    x = make_inputs(rng)
    y = make_labels(kind, rng, x)
    sw = None
    if sw_kind == "example":
        sw = np.array([0.5, 2.0, 0.0, 1.5], "float32")
    elif sw_kind == "token":
        sw = rng.uniform(0.0, 2.0, y.shape).astype("float32")

    t_out = teacher.intermediate_model(True, True)(x, training=False)
    s_out = student.intermediate_model(True, True)(x, training=False)
    projections = [tuple(p.get_weights()) for p in distiller.projections]
    assert bool(projections) == (student_size[0] != 16)
    expected = reference_terms(
        x, y, sw, to_numpy(t_out), to_numpy(s_out), alpha=alpha, temperature=temperature,
        layer_map=layer_map, projections=projections, **weights,
    )
    # No term is trivially small: a wrong mask or weight would show.
    assert all(value > 1e-2 for value in expected.values()), expected

    got = distiller.compute_loss_terms(
        x, tf.constant(y), None if sw is None else tf.constant(sw), t_out, s_out
    )
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == tf.float32, name
        np.testing.assert_allclose(float(got[name]), value, rtol=2e-5, atol=1e-6, err_msg=name)

    # The same numbers through Keras' evaluate(): the Distiller's own forward passes.
    distiller.compile(optimizer="sgd", run_eagerly=True)
    result = distiller.evaluate(x, y, sample_weight=sw, batch_size=BATCH, verbose=0, return_dict=True)
    for name, value in expected.items():
        np.testing.assert_allclose(result[name], value, rtol=2e-5, atol=1e-6, err_msg=name)


def test_sample_weight_of_shape_batch_by_one_equals_batch():
    # Keras accepts (batch, 1) sample weights for plain models; inside fit() their rank is
    # unknown at trace time, which once crashed the Distiller.
    rng = np.random.default_rng(5)
    teacher, student = task("sequence", bert()), task("sequence", distilbert())
    distiller = Distiller(teacher, student, alpha=0.5, hidden_cosine_weight=1.0)
    distiller.compile(optimizer="sgd")
    x = make_inputs(rng)
    y = make_labels("sequence", rng, x)
    sw = rng.uniform(0.0, 2.0, (BATCH,)).astype("float32")
    flat = distiller.evaluate(x, y, sample_weight=sw, batch_size=BATCH, verbose=0, return_dict=True)
    column = distiller.evaluate(x, y, sample_weight=sw[:, None], batch_size=BATCH, verbose=0, return_dict=True)
    unweighted = distiller.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    np.testing.assert_allclose(column["loss"], flat["loss"], rtol=1e-6)
    assert abs(flat["loss"] - unweighted["loss"]) > 1e-4  # the weights did act


def test_all_labels_ignored_gives_zero_not_nan():
    rng = np.random.default_rng(3)
    teacher, student = task("token", bert()), task("token", distilbert())
    distiller = Distiller(teacher, student, alpha=0.5)
    x = make_inputs(rng)
    y = np.full(x["token_ids"].shape, IGNORE, "int32")
    terms = distiller.compute_loss_terms(x, tf.constant(y), None, {"logits": teacher(x)}, {"logits": student(x)})
    assert float(terms["loss"]) == 0.0


@pytest.mark.parametrize("kind", ["sequence", "token", "mlm"])
def test_compiled_metrics_count_only_labelled_real_tokens(kind):
    """`metrics` see every labelled, non-padding position once; `weighted_metrics` also
    the sample weights (Keras' meaning of the two)."""
    rng = np.random.default_rng(13)
    keras.utils.set_random_seed(13)
    teacher, student = task(kind, bert()), task(kind, distilbert())
    jitter(teacher, rng)
    jitter(student, rng)
    x = make_inputs(rng)
    y = make_labels(kind, rng, x)
    # Labels the student gets right about half the time, so accuracy is neither 0 nor 1.
    pred = np.argmax(np.asarray(student(x)), -1)
    right = rng.random(y.shape) < 0.5
    right.flat[:2] = [True, False]
    y = np.where(y == IGNORE, y, np.where(right, pred, (pred + 1) % NUM_CLASSES)).astype("int32")
    sw = np.array([0.5, 2.0, 0.0, 1.5], "float32")
    distiller = Distiller(teacher, student, alpha=0.5)
    distiller.compile("sgd", metrics=["accuracy"], weighted_metrics=["accuracy"])
    result = distiller.evaluate(x, y, sample_weight=sw, batch_size=BATCH, verbose=0, return_dict=True)

    correct = (np.argmax(np.asarray(student(x)), -1) == y).astype(np.float64)
    if kind == "sequence":
        valid, w = np.ones_like(correct), sw.astype(np.float64)
    else:
        valid = ((y != IGNORE) & (x["padding_mask"] > 0)).astype(np.float64)
        w = valid * sw[:, None]
    assert 0 < (valid * correct).sum() < valid.sum()  # neither all right nor all wrong
    np.testing.assert_allclose(result["accuracy"], (valid * correct).sum() / valid.sum(), rtol=1e-6)
    np.testing.assert_allclose(result["weighted_accuracy"], (w * correct).sum() / w.sum(), rtol=1e-6)


def test_unlabelled_examples_learn_from_the_teacher_only():
    """Sequence labels of -100 (augmented text): no hard loss, every teacher term, and
    metrics skip them; a batch of them alone moves the student only through the teacher."""
    rng = np.random.default_rng(21)
    keras.utils.set_random_seed(21)
    teacher, student = task("sequence", bert(num_layers=2)), task("sequence", distilbert(num_layers=2))
    jitter(teacher, rng)
    jitter(student, rng)
    x = make_inputs(rng)
    pred = np.argmax(np.asarray(student(x)), -1)
    # Example 0 right, 1 wrong, 2 and 3 unlabelled.
    y = np.array([pred[0], (pred[1] + 1) % NUM_CLASSES, IGNORE, IGNORE], "int32")
    sw = np.array([0.5, 2.0, 1.0, 1.5], "float32")
    distiller = Distiller(teacher, student, alpha=0.4, temperature=2.0, layer_map=[0, 1],
                          hidden_cosine_weight=0.5, attention_weight=0.3)
    t_out = teacher.intermediate_model(True, True)(x, training=False)
    s_out = student.intermediate_model(True, True)(x, training=False)
    for weights in (None, sw):
        expected = reference_terms(x, y, weights, to_numpy(t_out), to_numpy(s_out), alpha=0.4, temperature=2.0,
                                   layer_map=[0, 1], cos_w=0.5, att_w=0.3)
        got = distiller.compute_loss_terms(x, tf.constant(y), None if weights is None else tf.constant(weights),
                                           t_out, s_out)
        for name, value in expected.items():
            np.testing.assert_allclose(float(got[name]), value, rtol=2e-5, atol=1e-6, err_msg=name)
    # The hard loss is the two labelled examples' CE over the whole batch of four.
    log_p = np_log_softmax(np.asarray(s_out["logits"], np.float64))
    np.testing.assert_allclose(float(got["hard_loss"]),
                               -(0.5 * log_p[0, y[0]] + 2.0 * log_p[1, y[1]]) / BATCH, rtol=2e-5)

    distiller.compile("sgd", metrics=["accuracy"])
    result = distiller.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    assert result["accuracy"] == pytest.approx(0.5)  # 1 right of the 2 labelled

    # All unlabelled, alpha 1 (hard labels only): nothing to learn; alpha 0.5: the soft loss moves it.
    for alpha, moves in ((1.0, False), (0.5, True)):
        before = [w.copy() for w in student.get_weights()]
        d = Distiller(teacher, student, alpha=alpha)
        d.compile(keras.optimizers.SGD(0.5))
        d.fit(x, np.full(BATCH, IGNORE, "int32"), batch_size=BATCH, epochs=1, verbose=0)
        change = max(float(np.abs(a - b).max()) for a, b in zip(before, student.get_weights()))
        assert (change > 1e-4) == moves, (alpha, change)


# ----- 2. the teacher stays frozen ------------------------------------------------------------
def test_teacher_frozen_and_no_duplicate_variables():
    rng = np.random.default_rng(4)
    keras.utils.set_random_seed(4)
    teacher, student = task("mlm", bert()), task("mlm", distilbert(hidden_dim=8))
    jitter(teacher, rng)
    distiller = Distiller(teacher, student, alpha=0.5, hidden_mse_weight=1.0, attention_weight=1.0)
    x = make_inputs(rng, batch=8)
    y = make_labels("mlm", rng, x)

    trainable = distiller.trainable_variables
    ids = [id(v) for v in trainable]
    assert len(ids) == len(set(ids)), "a variable appears twice: it would be updated twice a step"
    teacher_ids = {id(v) for v in teacher.weights}
    assert not teacher_ids & set(ids)
    expected_ids = {id(v) for v in student.trainable_variables}
    expected_ids |= {id(v) for p in distiller.projections for v in p.trainable_variables}
    assert set(ids) == expected_ids
    assert len(distiller.projections) == 2  # embeddings + one layer, student width 8 -> 16

    # No gradient reaches the teacher, even when we ask for it.
    teacher_tf_vars = [v.value for v in teacher.weights]
    with tf.GradientTape() as tape:
        tape.watch(teacher_tf_vars)
        t_out = distiller._teacher_outputs(x)
        s_out = distiller._student_outputs(x, training=True)
        loss = distiller.compute_loss_terms(x, tf.constant(y), None, t_out, s_out)["loss"]
    for g in tape.gradient(loss, teacher_tf_vars):
        assert g is None or not np.any(np.asarray(tf.convert_to_tensor(g)))

    before_teacher = [w.copy() for w in teacher.get_weights()]
    before_student = [w.copy() for w in student.get_weights()]
    distiller.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    distiller.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for a, b in zip(before_teacher, teacher.get_weights()):
        assert np.array_equal(a, b)
    assert not teacher.trainable
    changed = [not np.array_equal(a, b) for a, b in zip(before_student, student.get_weights())]
    assert all(changed), "every student weight gets a gradient here"


# ----- 3. alpha = 1 is plain fine-tuning --------------------------------------------------------
@pytest.mark.parametrize("make_optimizer,with_sample_weight", [
    (lambda: keras.optimizers.SGD(0.5), False),
    (lambda: keras.optimizers.Adam(1e-2), True),
], ids=["sgd", "adam-sample-weight"])
def test_alpha_one_equals_fine_tuning(make_optimizer, with_sample_weight):
    rng = np.random.default_rng(5)
    keras.utils.set_random_seed(5)
    teacher = task("sequence", bert())
    student_a = task("sequence", distilbert(num_layers=2))
    student_b = task("sequence", distilbert(num_layers=2))
    student_b.set_weights(student_a.get_weights())
    init = [w.copy() for w in student_a.get_weights()]
    x = make_inputs(rng, batch=16)
    y = make_labels("sequence", rng, x)
    sw = rng.uniform(0.0, 2.0, 16).astype("float32") if with_sample_weight else None

    distiller = Distiller(teacher, student_a, alpha=1.0, temperature=3.0)
    # Eager steps: a dozen steps of a tiny model cost less than tracing them.
    distiller.compile(optimizer=make_optimizer(), run_eagerly=True)
    distiller.fit(x, y, sample_weight=sw, batch_size=4, epochs=3, shuffle=False, verbose=0)

    student_b.compile(
        optimizer=make_optimizer(), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    x_student = {k: x[k] for k in ("token_ids", "padding_mask")}
    student_b.fit(x_student, y, sample_weight=sw, batch_size=4, epochs=3, shuffle=False, verbose=0)

    assert int(distiller.optimizer.iterations) == int(student_b.optimizer.iterations) == 12
    for a, b in zip(student_a.get_weights(), student_b.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    moved = max(np.abs(a - b).max() for a, b in zip(student_a.get_weights(), init))
    assert moved > 1e-3  # the comparison is not between two untouched models


# ----- 4. Hinton's T^2 ----------------------------------------------------------------------
def np_softmax(z):
    return np.exp(np_log_softmax(z))


def test_soft_loss_is_t_squared_kl_and_gradients_follow_hinton():
    rng = np.random.default_rng(6)
    num_classes, n = 6, 5
    keras.utils.set_random_seed(6)
    teacher = task("sequence", bert(), num_classes)
    student = task("sequence", distilbert(), num_classes)
    x = make_inputs(rng, batch=n)
    y = tf.constant(rng.integers(0, num_classes, n).astype("int32"))
    # Zero-mean logits, as in Hinton et al.'s high-temperature argument.
    t = rng.normal(0.0, 2.0, (n, num_classes))
    t -= t.mean(-1, keepdims=True)
    s = rng.normal(0.0, 2.0, (n, num_classes))
    s -= s.mean(-1, keepdims=True)

    grads = {}
    for T in (1.0, 2.0, 4.0, 10.0, 100.0):
        distiller = Distiller(teacher, student, alpha=0.0, temperature=T)
        s_var = tf.Variable(s.astype("float32"))
        with tf.GradientTape() as tape:
            terms = distiller.compute_loss_terms(
                x, y, None, {"logits": tf.constant(t, tf.float32)}, {"logits": s_var}
            )
        p_t, p_s = np_softmax(t / T), np_softmax(s / T)
        kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(-1).mean()
        # At high T the KL is a small difference of float32 log-probabilities, and T^2
        # magnifies its rounding: a looser tolerance there.
        rtol = 2e-5 if T < 10 else 1e-3
        np.testing.assert_allclose(float(terms["soft_loss"]), T**2 * kl, rtol=rtol)
        np.testing.assert_allclose(float(terms["loss"]), T**2 * kl, rtol=rtol)  # alpha = 0
        grads[T] = np.asarray(tape.gradient(terms["loss"], s_var), np.float64)
        # d/ds of T^2 * KL(softmax(t/T) || softmax(s/T)) = T * (p_s - p_t), per example / n.
        np.testing.assert_allclose(grads[T], T * (p_s - p_t) / n, rtol=1e-4, atol=1e-7 if T < 10 else 2e-6)

    # At high T the gradient tends to (s - t) / (num_classes * n): logit matching.
    limit = (s - t) / (num_classes * n)
    err = {T: np.abs(grads[T] - limit).max() for T in grads}
    assert err[100.0] < 0.02 * np.abs(limit).max()
    assert err[100.0] < err[10.0] < err[4.0]
    # With T^2 the soft gradients keep their scale as T grows; without it they shrink ~1/T^2.
    norm = {T: np.linalg.norm(g) for T, g in grads.items()}
    assert 0.25 < norm[4.0] / norm[1.0] < 4.0
    assert 0.5 < norm[100.0] / norm[10.0] < 2.0
    assert (norm[10.0] / 10.0**2) / norm[1.0] < 0.05


# ----- 5. the point of distillation ---------------------------------------------------------------
KW_CLASSES, KW_LEN, KW_VOCAB = 4, 6, 40


def keyword_task(n, rng):
    """One keyword among filler tokens decides the class: ids 2..13 are keywords
    (three per class), 20..39 filler. [CLS] first."""
    token_ids = rng.integers(20, KW_VOCAB, (n, KW_LEN + 1))
    token_ids[:, 0] = 1
    y = rng.integers(0, KW_CLASSES, n)
    token_ids[np.arange(n), rng.integers(1, KW_LEN + 1, n)] = 2 + 3 * y + rng.integers(0, 3, n)
    x = {"token_ids": token_ids.astype("int32"), "padding_mask": np.ones_like(token_ids, "int32")}
    return x, y.astype("int32")


def accuracy(model, x, y):
    return float((np.argmax(model.predict(x, batch_size=500, verbose=0), -1) == y).mean())


def test_distilled_student_beats_hard_labels_on_noisy_data():
    """The teacher learns the task from 1000 clean examples. The student gets 64 examples
    whose labels are half wrong. From the labels alone it cannot tell the keywords apart;
    from the teacher's soft targets on the same 64 inputs it can."""
    rng = np.random.default_rng(0)
    x_teacher, y_teacher = keyword_task(1000, rng)
    x_small, y_clean = keyword_task(64, rng)
    x_test, y_test = keyword_task(1000, rng)
    flip = rng.random(64) < 0.5
    y_noisy = np.where(flip, (y_clean + rng.integers(1, KW_CLASSES, 64)) % KW_CLASSES, y_clean).astype("int32")

    keras.utils.set_random_seed(0)
    teacher = TextClassifier(distilbert(2, 32, vocab=KW_VOCAB, max_len=8), KW_CLASSES, dropout=0.0)
    teacher.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    teacher.fit(x_teacher, y_teacher, batch_size=32, epochs=6, verbose=0)
    teacher_acc = accuracy(teacher, x_test, y_test)
    assert teacher_acc > 0.95

    hard_student = TextClassifier(distilbert(1, 32, vocab=KW_VOCAB, max_len=8), KW_CLASSES, dropout=0.0)
    distilled_student = TextClassifier(distilbert(1, 32, vocab=KW_VOCAB, max_len=8), KW_CLASSES, dropout=0.0)
    distilled_student.set_weights(hard_student.get_weights())

    hard_student.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hard_student.fit(x_small, y_noisy, batch_size=16, epochs=40, shuffle=False, verbose=0)
    distiller = Distiller(teacher, distilled_student, alpha=0.1, temperature=4.0)
    distiller.compile(keras.optimizers.Adam(3e-3))
    distiller.fit(x_small, y_noisy, batch_size=16, epochs=40, shuffle=False, verbose=0)
    assert int(distiller.optimizer.iterations) == int(hard_student.optimizer.iterations) == 160

    hard_acc = accuracy(hard_student, x_test, y_test)
    distilled_acc = accuracy(distilled_student, x_test, y_test)
    print(f"teacher {teacher_acc:.3f}  hard labels {hard_acc:.3f}  distilled {distilled_acc:.3f}")
    # Over data seeds 0-5 (teacher > 0.95 each time): hard labels 0.30-0.48, distilled
    # 0.74-1.00; the margins leave room for other seeds and thread counts.
    assert hard_acc < 0.6
    assert distilled_acc > 0.6
    assert distilled_acc > hard_acc + 0.25


# ----- 6. cached teacher outputs --------------------------------------------------------------
class CountingTeacher:
    """Runs the teacher and counts, at run time, the batches it computed."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def _count(self, logits):
        self.calls += 1
        return logits

    def __call__(self, x, training=False):
        logits = self.model(x, training=training)
        counted = tf.numpy_function(self._count, [logits], tf.float32, stateful=True)
        return tf.ensure_shape(counted, logits.shape)


def test_cached_teacher_outputs_match_live_teacher_and_run_once():
    rng = np.random.default_rng(7)
    keras.utils.set_random_seed(7)
    teacher = task("sequence", bert())
    jitter(teacher, rng)
    student_live = task("sequence", distilbert())
    student_cached = task("sequence", distilbert())
    student_cached.set_weights(student_live.get_weights())
    init = [w.copy() for w in student_live.get_weights()]
    x = make_inputs(rng, batch=12)
    y = make_labels("sequence", rng, x)
    sw = rng.uniform(0.5, 1.5, 12).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y, sw)).batch(4)  # 3 batches

    counting = CountingTeacher(teacher)
    cached = cache_teacher_outputs(counting, dataset)

    live = Distiller(teacher, student_live, alpha=0.4, temperature=2.0)
    live.compile(keras.optimizers.SGD(0.5))
    live.fit(dataset, epochs=2, shuffle=False, verbose=0)
    from_cache = Distiller(teacher, student_cached, alpha=0.4, temperature=2.0)
    from_cache.compile(keras.optimizers.SGD(0.5))
    from_cache.fit(cached, epochs=2, shuffle=False, verbose=0)

    assert counting.calls == 3, "the teacher ran again in the second epoch"
    for a, b in zip(student_live.get_weights(), student_cached.get_weights()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    assert max(np.abs(a - b).max() for a, b in zip(student_cached.get_weights(), init)) > 1e-3

    # The batches carry the teacher's logits; once cached, changing the teacher moves nothing.
    expected = np.asarray(teacher(x, training=False))
    first = np.concatenate([np.asarray(b[0][TEACHER_LOGITS]) for b in cached])
    np.testing.assert_allclose(first, expected, rtol=1e-6, atol=1e-6)
    teacher.set_weights([np.zeros_like(w) for w in teacher.get_weights()])
    again = np.concatenate([np.asarray(b[0][TEACHER_LOGITS]) for b in cached])
    np.testing.assert_array_equal(again, first)
    assert counting.calls == 3


def test_cached_teacher_outputs_in_files_are_read_back_without_the_teacher(tmp_path):
    """`cache_path`: the first pass writes the logits to files; a dataset built again on the same
    path (as a resumed or second run would) reads them back and never calls the teacher."""
    rng = np.random.default_rng(9)
    teacher = task("sequence", bert())
    jitter(teacher, rng)
    x = make_inputs(rng, batch=8)
    y = make_labels("sequence", rng, x)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    path = str(tmp_path / "teacher_logits")
    first = CountingTeacher(teacher)
    written = np.concatenate([np.asarray(b[0][TEACHER_LOGITS]) for b in cache_teacher_outputs(first, dataset, path)])
    assert first.calls == 2 and any(p.name.startswith("teacher_logits") for p in tmp_path.iterdir())
    np.testing.assert_allclose(written, np.asarray(teacher(x, training=False)), rtol=1e-6, atol=1e-6)
    second = CountingTeacher(teacher)
    again = np.concatenate([np.asarray(b[0][TEACHER_LOGITS]) for b in cache_teacher_outputs(second, dataset, path)])
    assert second.calls == 0, "the file cache was not used"
    np.testing.assert_array_equal(again, written)


def test_cached_logits_refuse_intermediate_terms():
    rng = np.random.default_rng(8)
    teacher, student = task("sequence", bert()), task("sequence", distilbert())
    x = make_inputs(rng, batch=4)
    y = make_labels("sequence", rng, x)
    cached = cache_teacher_outputs(teacher, tf.data.Dataset.from_tensor_slices((x, y)).batch(4))
    for weights in (dict(hidden_cosine_weight=1.0), dict(attention_weight=1.0)):
        distiller = Distiller(teacher, student, **weights)
        distiller.compile("sgd", run_eagerly=True)
        with pytest.raises(ValueError, match="Cached teacher logits"):
            distiller.fit(cached, epochs=1, shuffle=False, verbose=0)


# ----- 7. student init from teacher layers ------------------------------------------------------
def assert_same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    assert len(wa) == len(wb) > 0
    for u, v in zip(wa, wb):
        np.testing.assert_array_equal(u, v)


def test_default_layer_maps():
    assert default_layer_map(12, 6) == [0, 2, 4, 7, 9, 11]  # DistilBERT's own choice
    assert default_layer_map(6, 3) == [0, 2, 4]
    assert default_layer_map(4, 2) == [0, 2]
    assert default_layer_map(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"more layers \(4\) than the teacher \(2\)"):
        default_layer_map(2, 4)


def test_init_student_from_teacher_12_to_6():
    rng = np.random.default_rng(9)
    teacher = TextClassifier(bert(num_layers=12, hidden_dim=8, max_len=16), NUM_CLASSES)
    jitter(teacher, rng)
    student = TextClassifier(bert(num_layers=6, hidden_dim=8, max_len=8), NUM_CLASSES)
    used = init_student_from_teacher(student, teacher)
    assert used == [0, 2, 4, 7, 9, 11]
    t_bb, s_bb = teacher.backbone, student.backbone
    for s_i, t_i in enumerate(used):
        assert_same_weights(t_bb.get_layer(f"transformer_layer_{t_i}"), s_bb.get_layer(f"transformer_layer_{s_i}"))
    # Student layer 3 is teacher layer 7, not 6 (the uneven step of DistilBERT's map).
    with pytest.raises(AssertionError):
        assert_same_weights(t_bb.get_layer("transformer_layer_6"), s_bb.get_layer("transformer_layer_3"))
    for name in ("token_embedding", "segment_embedding", "embeddings_layer_norm", "pooler"):
        assert_same_weights(t_bb.get_layer(name), s_bb.get_layer(name))
    # Fewer positions: the first rows of the teacher's table.
    t_pos = t_bb.get_layer("position_embedding").get_weights()[0]
    np.testing.assert_array_equal(s_bb.get_layer("position_embedding").get_weights()[0], t_pos[:8])
    assert_same_weights(teacher.get_layer("classifier"), student.get_layer("classifier"))

    # An explicit map is followed.
    used = init_student_from_teacher(student, teacher, layer_map=[11, 10, 9, 8, 1, 0])
    assert used == [11, 10, 9, 8, 1, 0]
    assert_same_weights(t_bb.get_layer("transformer_layer_11"), s_bb.get_layer("transformer_layer_0"))
    assert_same_weights(t_bb.get_layer("transformer_layer_0"), s_bb.get_layer("transformer_layer_5"))


def test_init_distilbert_student_6_to_3():
    rng = np.random.default_rng(10)
    teacher = TextClassifier(bert(num_layers=6, hidden_dim=8), NUM_CLASSES)
    jitter(teacher, rng)
    student = TextClassifier(distilbert(num_layers=3, hidden_dim=8), NUM_CLASSES)
    used = init_student_from_teacher(student, teacher)
    assert used == [0, 2, 4]
    for s_i, t_i in enumerate(used):
        assert_same_weights(
            teacher.backbone.get_layer(f"transformer_layer_{t_i}"),
            student.backbone.get_layer(f"transformer_layer_{s_i}"),
        )
    assert_same_weights(teacher.backbone.get_layer("token_embedding"), student.backbone.get_layer("token_embedding"))


def test_init_student_errors():
    teacher = task("sequence", bert(num_layers=2, hidden_dim=8))
    wide = task("sequence", distilbert(num_layers=1, hidden_dim=16))
    with pytest.raises(ValueError, match=r"hidden_dim=16.*hidden_dim=8"):
        init_student_from_teacher(wide, teacher)
    student = task("sequence", distilbert(num_layers=2, hidden_dim=8))
    with pytest.raises(ValueError, match=r"teacher layers \[5\] that do not exist.*0\.\.1"):
        init_student_from_teacher(student, teacher, layer_map=[0, 5])
    with pytest.raises(ValueError, match=r"3 entries but the student has 2 layers"):
        init_student_from_teacher(student, teacher, layer_map=[0, 1, 1])
    # Same weight shapes, other head split: the copied layer would compute another function.
    other_heads = task("sequence", distilbert(num_layers=2, hidden_dim=8, num_heads=4))
    with pytest.raises(ValueError, match=r"num_heads=4.*num_heads=2"):
        init_student_from_teacher(other_heads, teacher)
    other_ffn = TextClassifier(DistilBertBackbone(VOCAB, 2, 2, 8, 24, dropout=0.0, max_sequence_length=16), 3)
    with pytest.raises(ValueError, match=r"Cannot copy teacher layer 0 into student layer 0"):
        init_student_from_teacher(other_ffn, teacher)
    deep = task("sequence", distilbert(num_layers=3, hidden_dim=8))
    with pytest.raises(ValueError, match=r"more layers \(3\) than the teacher \(2\)"):
        init_student_from_teacher(deep, teacher)


# ----- 8. errors, config, saving -------------------------------------------------------------
def test_distiller_argument_errors():
    teacher = task("sequence", bert())
    student = task("sequence", distilbert())
    with pytest.raises(ValueError, match=r"teacher vocabulary_size=40, student vocabulary_size=41"):
        Distiller(teacher, task("sequence", distilbert(vocab=41)))
    both_sizes = r"teacher TextClassifier gives \(batch, 3\).*student TextClassifier gives \(batch, 5\)"
    with pytest.raises(ValueError, match=both_sizes):
        Distiller(teacher, task("sequence", distilbert(), num_classes=5))
    with pytest.raises(ValueError, match=r"\(batch, 3\).*\(batch, None, 3\)"):
        Distiller(teacher, task("token", distilbert()))
    for temperature in (0.0, -1.0):
        with pytest.raises(ValueError, match=f"temperature must be > 0, got {temperature}"):
            Distiller(teacher, student, temperature=temperature)
    for alpha in (-0.1, 1.5):
        with pytest.raises(ValueError, match=rf"alpha must be in \[0, 1\], got {alpha}"):
            Distiller(teacher, student, alpha=alpha)
    with pytest.raises(ValueError, match=r"teacher layers \[2\] that do not exist"):
        Distiller(teacher, student, layer_map=[2])
    with pytest.raises(ValueError, match=r"2 entries but the student has 1 layers"):
        Distiller(teacher, student, layer_map=[0, 1])
    with pytest.raises(ValueError, match=r"hidden_dim=16.*hidden_dim=8"):
        Distiller(teacher, task("sequence", distilbert(hidden_dim=8)), hidden_cosine_weight=1.0)
    with pytest.raises(ValueError, match="must be a tfdistil task model"):
        Distiller(teacher.backbone, student)


def test_get_config_round_trip():
    teacher = task("token", bert())
    student = task("token", distilbert(hidden_dim=8))
    distiller = Distiller(
        teacher, student, alpha=0.25, temperature=3.0, hidden_mse_weight=0.5, attention_weight=0.1,
        layer_map=[1], name="kd",
    )
    config = distiller.get_config()
    assert {k: config[k] for k in ("alpha", "temperature", "hidden_cosine_weight", "hidden_mse_weight",
                                   "attention_weight", "layer_map", "name")} == dict(
        alpha=0.25, temperature=3.0, hidden_cosine_weight=0.0, hidden_mse_weight=0.5,
        attention_weight=0.1, layer_map=[1], name="kd",
    )
    clone = Distiller.from_config(config)
    assert clone.get_config() == config
    assert isinstance(clone.teacher, TokenClassifier) and isinstance(clone.student, TokenClassifier)
    assert clone.student.backbone.hidden_dim == 8 and not clone.teacher.trainable
    assert len(clone.projections) == 2
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(distiller))
    assert isinstance(again, Distiller) and again.get_config() == config


def test_whole_distiller_saves_and_reloads(tmp_path):
    rng = np.random.default_rng(14)
    teacher, student = task("token", bert()), task("token", distilbert(hidden_dim=8))
    jitter(teacher, rng)
    distiller = Distiller(teacher, student, alpha=0.5, hidden_mse_weight=1.0, name="kd")
    jitter(distiller.projections[0], rng)
    x = make_inputs(rng)
    distiller.save(tmp_path / "distiller.keras")
    restored = keras.saving.load_model(tmp_path / "distiller.keras")
    assert isinstance(restored, Distiller) and restored.get_config() == distiller.get_config()
    for a, b in zip(distiller.weights, restored.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(restored.teacher(x)), np.asarray(teacher(x)))
    np.testing.assert_array_equal(np.asarray(restored.student(x)), np.asarray(student(x)))


@pytest.mark.parametrize("kind", ["sequence", "mlm"])
def test_student_saved_alone_after_distillation(kind, tmp_path):
    rng = np.random.default_rng(11)
    teacher, student = task(kind, bert()), task(kind, distilbert())
    jitter(teacher, rng)
    x = make_inputs(rng, batch=8)
    y = make_labels(kind, rng, x)
    distiller = Distiller(teacher, student, alpha=0.5, attention_weight=0.5)
    distiller.compile(keras.optimizers.Adam(1e-2), run_eagerly=True)
    distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "student.keras"
    student.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(student)
    np.testing.assert_array_equal(np.asarray(restored(x)), np.asarray(student(x)))
    # predict() runs a traced graph: equal up to float32 rounding.
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), distiller.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


# ----- 9. XLA ---------------------------------------------------------------------------------
def test_jit_compile_fit_matches_graph_step_by_step():
    rng = np.random.default_rng(12)
    keras.utils.set_random_seed(12)
    teacher = task("token", bert())
    jitter(teacher, rng)
    students = [task("token", distilbert()), task("token", distilbert())]
    students[1].set_weights(students[0].get_weights())
    initial = [w.copy() for w in students[0].get_weights()]
    x = make_inputs(rng)
    y = make_labels("token", rng, x)
    teacher_before = [w.copy() for w in teacher.get_weights()]
    losses = []
    for student, jit in zip(students, (True, False)):
        distiller = Distiller(teacher, student, alpha=0.5, hidden_cosine_weight=0.5, attention_weight=0.5)
        distiller.compile(keras.optimizers.Adam(1e-2), jit_compile=jit)
        assert distiller.jit_compile is jit  # not silently turned off
        history = distiller.fit(x, y, batch_size=BATCH, epochs=3, verbose=0)
        losses.append(history.history["loss"])
    assert np.all(np.isfinite(losses))
    np.testing.assert_allclose(losses[0][0], losses[1][0], rtol=1e-5, atol=1e-5)
    assert losses[0][-1] < losses[0][0]
    # Not only the first, pre-update loss: after every step the compiled and the graph students agree.
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4, atol=1e-5)
    moved = max(np.abs(a - b).max() for a, b in zip(students[0].get_weights(), initial))
    assert moved > 1e-3
    for a, b in zip(students[0].get_weights(), students[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    for a, b in zip(teacher_before, teacher.get_weights()):  # frozen in compiled steps too
        np.testing.assert_array_equal(a, b)


# ----- 10. loss terms and output comparisons as objects -------------------------------------
@keras.saving.register_keras_serializable(package="tfdistil_tests")
class LogitsMSE(DistillationTerm):
    """A term the Distiller has no branch for: squared logit difference per counted distribution."""

    name = "logits_mse"

    def compute_loss(self, inputs):
        (pair,) = inputs.logits
        diff = tf.cast(pair.teacher, tf.float32) - tf.cast(pair.student, tf.float32)
        return tf.reduce_sum(tf.reduce_mean(diff**2, axis=-1) * pair.weights) / pair.denominator


@pytest.mark.parametrize("kind", ["sequence", "token"])
def test_terms_as_objects_equal_the_weight_arguments(kind):
    rng = np.random.default_rng(20)
    teacher, student = task(kind, bert()), task(kind, distilbert(hidden_dim=8))
    jitter(teacher, rng)
    jitter(student, rng)
    by_weights = Distiller(teacher, student, alpha=0.3, temperature=2.5, hidden_cosine_weight=0.5,
                           hidden_mse_weight=0.4, attention_weight=0.2)
    assert [(type(t), t.weight) for t in by_weights.terms] == [
        (HardLabels, 0.3), (SoftTargets, 0.7), (HiddenCosine, 0.5), (HiddenMSE, 0.4), (AttentionKL, 0.2)]
    by_terms = Distiller(teacher, student, terms=[
        HardLabels(weight=0.3), SoftTargets(temperature=2.5, weight=0.7), HiddenCosine(weight=0.5),
        HiddenMSE(weight=0.4), AttentionKL(weight=0.2)])
    by_terms.set_weights(by_weights.get_weights())  # the same projections
    x = make_inputs(rng)
    y = tf.constant(make_labels(kind, rng, x))
    t_out = teacher.intermediate_model(True, True)(x, training=False)
    s_out = student.intermediate_model(True, True)(x, training=False)
    a = by_weights.compute_loss_terms(x, y, None, t_out, s_out)
    b = by_terms.compute_loss_terms(x, y, None, t_out, s_out)
    assert list(a) == list(b) == ["hard_loss", "soft_loss", "hidden_cosine_loss", "hidden_mse_loss",
                                  "attention_loss", "loss"]
    for name in a:
        assert float(a[name]) == float(b[name]), name
    # The total is the weighted sum of the terms (by hand, in float64).
    weights = {"hard_loss": 0.3, "soft_loss": 0.7, "hidden_cosine_loss": 0.5, "hidden_mse_loss": 0.4,
               "attention_loss": 0.2}
    np.testing.assert_allclose(float(b["loss"]), sum(w * float(b[n]) for n, w in weights.items()), rtol=1e-6)
    # One set of projections serves both hidden-state terms.
    assert len(by_terms.projections) == 2


@pytest.mark.parametrize("kind", ["sequence", "token"])
def test_a_new_term_is_a_class(kind, tmp_path):
    """A term the Distiller does not know: computed, weighted into the loss, logged under its
    name, kept by get_config; checked against numpy by hand."""
    rng = np.random.default_rng(21)
    teacher, student = task(kind, bert()), task(kind, distilbert())
    jitter(teacher, rng)
    jitter(student, rng)
    distiller = Distiller(teacher, student, terms=[SoftTargets(temperature=2.0), LogitsMSE(weight=0.5)], layer_map=[1])
    x = make_inputs(rng)
    y = make_labels(kind, rng, x)
    t_out, s_out = {"logits": teacher(x)}, {"logits": student(x)}
    got = distiller.compute_loss_terms(x, tf.constant(y), None, t_out, s_out)
    t_logits, s_logits = (np.asarray(o["logits"], np.float64) for o in (t_out, s_out))
    counted = np.ones(len(y)) if kind == "sequence" else (y != IGNORE) * x["padding_mask"]
    expected_mse = (((t_logits - s_logits) ** 2).mean(-1) * counted).sum() / counted.sum()
    soft = reference_terms(x, y, None, to_numpy(t_out), to_numpy(s_out), alpha=0.0, temperature=2.0,
                           layer_map=[1])["soft_loss"]
    assert expected_mse > 1e-2
    np.testing.assert_allclose(float(got["logits_mse"]), expected_mse, rtol=1e-5)
    np.testing.assert_allclose(float(got["loss"]), soft + 0.5 * expected_mse, rtol=1e-5)
    distiller.compile(optimizer="sgd", run_eagerly=True)
    logs = distiller.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    assert sorted(logs) == ["logits_mse", "loss", "soft_loss"]
    np.testing.assert_allclose(logs["logits_mse"], expected_mse, rtol=1e-5)
    config = distiller.get_config()
    clone = Distiller.from_config(config)
    assert [type(t) for t in clone.terms] == [SoftTargets, LogitsMSE] and clone.terms[1].weight == 0.5
    assert clone.get_config() == config


def test_output_comparison_is_an_argument_with_the_automatic_choice_as_default():
    teacher, student = task("token", bert()), task("token", distilbert())
    assert type(Distiller(teacher, student).output_comparison) is PerLabelledToken
    seq_teacher, seq_student = task("sequence", bert()), task("sequence", distilbert())
    assert type(Distiller(seq_teacher, seq_student).output_comparison) is PerExample
    explicit = Distiller(teacher, student, output_comparison=PerLabelledToken(), alpha=0.4)
    config = explicit.get_config()
    assert type(Distiller.from_config(config).output_comparison) is PerLabelledToken
    with pytest.raises(ValueError, match=r"PerExample compares \(batch, classes\) outputs"):
        Distiller(teacher, student, output_comparison=PerExample())
    with pytest.raises(ValueError, match=r"PerLabelledToken compares"):
        Distiller(seq_teacher, seq_student, output_comparison=PerLabelledToken())


def test_term_argument_errors():
    teacher, student = task("sequence", bert()), task("sequence", distilbert())
    with pytest.raises(ValueError, match=r"not both; got terms and \{'alpha': 0.2\}"):
        Distiller(teacher, student, alpha=0.2, terms=[SoftTargets()])
    with pytest.raises(ValueError, match=r"one name: \['soft_loss', 'soft_loss'\]"):
        Distiller(teacher, student, terms=[SoftTargets(), SoftTargets(temperature=4.0)])
    with pytest.raises(ValueError, match="non-empty list of DistillationTerm"):
        Distiller(teacher, student, terms=["soft"])
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        SoftTargets(temperature=0)
    narrow = task("sequence", distilbert(hidden_dim=8))
    with pytest.raises(ValueError, match=r"hidden_dim=16.*hidden_dim=8"):
        Distiller(teacher, narrow, terms=[HiddenCosine()])
    assert len(Distiller(teacher, narrow, terms=[HiddenCosine(), HiddenMSE()]).projections) == 2
