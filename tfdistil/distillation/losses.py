"""Distillation loss terms as plain functions.

Every function returns a scalar that is a *sum* over the valid positions of this
replica divided by `denominator`, the number of valid positions over the *global*
batch (all replicas). Summed over replicas, the gradients then equal those of one
device on the global batch, so the balance between terms does not move with the
number of replicas (see `global_count`).

Conventions: `mask` is float32 with 1 where a position counts (an example for
classification; a labelled, non-padding token for token tasks); `weights` are the
per-position sample weights (mask times sample_weight).
"""
import tensorflow as tf
from keras import ops

from tfdistil.text.packing import IGNORE_INDEX

_EPS = 1e-9


def global_count(value):
    """Sum of `value` over all replicas (itself outside tf.distribute)."""
    value = tf.cast(value, tf.float32)
    ctx = tf.distribute.get_replica_context()
    if ctx is not None and ctx.num_replicas_in_sync > 1:
        value = ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)
    return tf.maximum(value, 1.0)


def num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def label_mask(labels, padding_mask=None, ignore_index=IGNORE_INDEX):
    """1.0 where a label counts: not `ignore_index`, and (for tokens) not padding."""
    mask = ops.cast(ops.not_equal(labels, ignore_index), "float32")
    if padding_mask is not None and len(labels.shape) == 2:
        mask = mask * ops.cast(padding_mask, "float32")
    return mask


def hard_loss(labels, logits, weights, denominator):
    """Cross-entropy of the labels under softmax(logits): sum(w * CE) / denominator."""
    logits = ops.cast(logits, "float32")
    safe_labels = ops.where(weights > 0, labels, ops.zeros_like(labels))
    ce = ops.sparse_categorical_crossentropy(safe_labels, logits, from_logits=True)
    return ops.sum(ce * weights) / denominator


def soft_loss(teacher_logits, student_logits, temperature, weights, denominator):
    """Hinton et al.: T^2 * KL(softmax(t/T) || softmax(s/T)).

    The T^2 factor keeps the soft-target gradients (which scale as 1/T^2) on the scale
    of the hard-label ones, so `alpha` means the same at any temperature.
    """
    t = ops.cast(teacher_logits, "float32") / temperature
    s = ops.cast(student_logits, "float32") / temperature
    t_log_probs = ops.log_softmax(t, axis=-1)
    s_log_probs = ops.log_softmax(s, axis=-1)
    kl = ops.sum(ops.exp(t_log_probs) * (t_log_probs - s_log_probs), axis=-1)
    return temperature**2 * ops.sum(kl * weights) / denominator


def score_mse(targets, scores, weights, denominator):
    """Squared error of one-output scores against `targets` (gold or the teacher's), one per
    example: sum(w * (score - target)^2) / denominator. (batch,) and (batch, 1) both work."""
    scores = ops.reshape(ops.cast(scores, "float32"), (-1,))
    targets = ops.reshape(ops.cast(targets, "float32"), (-1,))
    return ops.sum(ops.square(scores - targets) * weights) / denominator


def hidden_cosine_loss(teacher_hidden, student_hidden, token_mask, denominator):
    """DistilBERT's L_cos: mean over real tokens of 1 - cos(student, teacher)."""
    t = ops.cast(teacher_hidden, "float32")
    s = ops.cast(student_hidden, "float32")
    # Clamped under the square root, not added after it: padding positions of a block that
    # skips padding are zero vectors, and sqrt's gradient at 0 would make them NaN (masked
    # out of the loss, but NaN times a zero weight is still NaN in a projection's gradient).
    cos = ops.sum(t * s, axis=-1) / ops.sqrt(
        ops.maximum(ops.sum(t * t, axis=-1) * ops.sum(s * s, axis=-1), _EPS**2)
    )
    return ops.sum((1.0 - cos) * token_mask) / denominator


def hidden_mse_loss(teacher_hidden, student_hidden, token_mask, denominator):
    """TinyBERT's hidden-state loss: mean squared error per real token (mean over width)."""
    t = ops.cast(teacher_hidden, "float32")
    s = ops.cast(student_hidden, "float32")
    mse = ops.mean(ops.square(t - s), axis=-1)
    return ops.sum(mse * token_mask) / denominator


def attention_kl_loss(teacher_probs, student_probs, token_mask, denominator):
    """KL(teacher attention || student attention) per query row, averaged over heads,
    summed over real query tokens. Different head counts are compared head-averaged."""
    t = ops.cast(teacher_probs, "float32")
    s = ops.cast(student_probs, "float32")
    if t.shape[1] != s.shape[1]:
        t = ops.mean(t, axis=1, keepdims=True)
        s = ops.mean(s, axis=1, keepdims=True)
    # (batch, heads, query): KL over keys; padded keys carry ~0 teacher mass.
    kl = ops.sum(t * (ops.log(t + _EPS) - ops.log(s + _EPS)), axis=-1)
    kl = ops.mean(kl, axis=1)
    return ops.sum(kl * token_mask) / denominator
