"""tfdistil.layers: the shared harness on every layer, plus hand-written numpy references.

The numpy functions below are written from the papers' formulas (Vaswani et al. for
attention and sinusoidal positions, Hendrycks & Gimpel for GELU, Devlin et al. for the
post-LN block and the pooler), not from the code under test.
"""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

from harness import graph_def_nodes, graph_def_uses_xla, run_layer_test, shared_initial_values
from tfdistil.layers import (
    FeedForwardNetwork,
    LayerNorm,
    MultiHeadSelfAttention,
    Pooler,
    PositionalEmbedding,
    TransformerEncoderBlock,
    skip_padding,
    xla_layer_norm,
)

BATCH, SEQ, HIDDEN, HEADS, INTERMEDIATE = 2, 5, 8, 2, 16


def rng(seed=0):
    return np.random.default_rng(seed)


def tiny_inputs(seed=0, batch=BATCH, seq=SEQ, hidden=HIDDEN):
    return rng(seed).normal(size=(batch, seq, hidden)).astype("float32")


def tiny_mask(batch=BATCH, seq=SEQ):
    mask = np.ones((batch, seq), dtype="int32")
    mask[1, 3:] = 0  # second example: 3 real tokens, 2 padding
    return mask


# ---------------------------------------------------------------- numpy references


def np_softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def np_attention(x, mask, wq, bq, wk, bk, wv, bv, wo, bo, num_heads):
    """softmax(Q K^T / sqrt(d) + mask_bias) V, heads concatenated, then W_o. float64.

    Returns (output (b, s, h), probabilities (b, heads, s, s))."""
    x = x.astype("float64")
    b, s, h = x.shape
    d = h // num_heads

    def split(t):  # (b, s, h) -> (b, heads, s, d)
        return t.reshape(b, s, num_heads, d).transpose(0, 2, 1, 3)

    q, k, v = split(x @ wq + bq), split(x @ wk + bk), split(x @ wv + bv)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)
    if mask is not None:
        scores = scores + np.where(mask[:, None, None, :] > 0, 0.0, -1e9)
    probs = np_softmax(scores)
    context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, h)
    return context @ wo + bo, probs


def np_gelu_erf(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def np_gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def np_ffn(x, w1, b1, w2, b2, activation=np_gelu_erf):
    return activation(x.astype("float64") @ w1 + b1) @ w2 + b2


def np_layer_norm(x, gamma, beta, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_sinusoidal(length, dim):
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    table = np.zeros((length, dim))
    for pos in range(length):
        for channel in range(dim):
            i = channel // 2
            angle = pos / 10000 ** (2 * i / dim)
            table[pos, channel] = math.sin(angle) if channel % 2 == 0 else math.cos(angle)
    return table


def set_attention_weights(layer, seed=1, hidden=HIDDEN, scale=0.5):
    """Known random weights; returns them as the separate (wq, bq, wk, bk, wv, bv, wo, bo).

    The fused kernel is laid out [query | key | value] along its last axis, each
    split head-major ((heads, head_dim)), the standard layout a checkpoint converter maps to.
    """
    r = rng(seed)
    wq, wk, wv, wo = (r.normal(scale=scale, size=(hidden, hidden)) for _ in range(4))
    bq, bk, bv, bo = (r.normal(scale=0.1, size=(hidden,)) for _ in range(4))
    layer.qkv_kernel.assign(np.concatenate([wq, wk, wv], axis=1).astype("float32"))
    layer.qkv_bias.assign(np.concatenate([bq, bk, bv]).astype("float32"))
    layer.output_kernel.assign(wo.astype("float32"))
    layer.output_bias.assign(bo.astype("float32"))
    return wq, bq, wk, bk, wv, bv, wo, bo


def set_dense(dense, seed, scale=0.3):
    r = rng(seed)
    kernel = r.normal(scale=scale, size=tuple(dense.kernel.shape))
    bias = r.normal(scale=0.1, size=tuple(dense.bias.shape))
    dense.kernel.assign(kernel.astype("float32"))
    dense.bias.assign(bias.astype("float32"))
    return kernel, bias


# ---------------------------------------------------------------- harness runs


@pytest.mark.parametrize("with_mask", [True, False], ids=["mask", "no_mask"])
def test_attention_harness(with_mask):
    data = {"inputs": tiny_inputs()}
    if with_mask:
        data["padding_mask"] = tiny_mask()
    run_layer_test(
        MultiHeadSelfAttention,
        {"num_heads": HEADS, "dropout": 0.0},
        data,
        (BATCH, SEQ, HIDDEN),
        expected_num_trainable_weights=4,
    )


def test_attention_harness_with_scores():
    run_layer_test(
        MultiHeadSelfAttention,
        {"num_heads": HEADS, "dropout": 0.1, "kernel_initializer": "he_normal", "bias_initializer": "ones"},
        {"inputs": tiny_inputs(), "padding_mask": tiny_mask()},
        ((BATCH, SEQ, HIDDEN), (BATCH, HEADS, SEQ, SEQ)),
        call_kwargs={"return_attention_scores": True},
        expected_output_dtype=(None, "float32"),  # probabilities stay float32
        expected_num_trainable_weights=4,
        run_precision_test=True,
    )


@pytest.mark.parametrize("activation", ["gelu", "gelu_approximate", "relu"])
def test_feed_forward_harness(activation):
    run_layer_test(
        FeedForwardNetwork,
        {"intermediate_dim": INTERMEDIATE, "activation": activation, "dropout": 0.0},
        tiny_inputs(),
        (BATCH, SEQ, HIDDEN),
        expected_num_trainable_weights=4,
        run_saving_test=activation == "gelu",
        run_precision_test=activation != "relu",
    )


@pytest.mark.parametrize("embedding_type,num_weights", [("learned", 1), ("sinusoidal", 0)])
def test_positional_embedding_harness(embedding_type, num_weights):
    run_layer_test(
        PositionalEmbedding,
        {"sequence_length": 12, "embedding_type": embedding_type, "initializer": "glorot_uniform"},
        tiny_inputs(),
        (1, SEQ, HIDDEN),
        expected_num_trainable_weights=num_weights,
    )


@pytest.mark.parametrize("mode,num_weights", [("cls", 2), ("mean", 0)])
def test_pooler_harness(mode, num_weights):
    data = {"inputs": tiny_inputs()}
    if mode == "mean":
        data["padding_mask"] = tiny_mask()
    run_layer_test(
        Pooler,
        {"mode": mode, "kernel_initializer": "glorot_uniform"},
        data,
        (BATCH, HIDDEN),
        expected_num_trainable_weights=num_weights,
    )


def test_encoder_block_harness():
    run_layer_test(
        TransformerEncoderBlock,
        {
            "num_heads": HEADS,
            "intermediate_dim": INTERMEDIATE,
            "dropout": 0.1,
            "attention_dropout": 0.0,
            "activation": "gelu",
            "layer_norm_epsilon": 1e-6,
            "kernel_initializer": "glorot_uniform",
            "skip_padding": "never",
            "xla_layer_norm": False,
        },
        {"inputs": tiny_inputs(), "padding_mask": tiny_mask()},
        (BATCH, SEQ, HIDDEN),
        # attention 4, feed-forward 4, two LayerNorms 2 each
        expected_num_trainable_weights=12,
    )


def test_encoder_block_harness_with_scores():
    run_layer_test(
        TransformerEncoderBlock,
        {"num_heads": HEADS, "intermediate_dim": INTERMEDIATE, "dropout": 0.0},
        {"inputs": tiny_inputs(), "padding_mask": tiny_mask()},
        ((BATCH, SEQ, HIDDEN), (BATCH, HEADS, SEQ, SEQ)),
        call_kwargs={"return_attention_scores": True},
        expected_output_dtype=(None, "float32"),
        expected_num_trainable_weights=12,
        run_saving_test=True,
        run_precision_test=False,
    )


# ---------------------------------------------------------------- attention numerics


def test_attention_matches_numpy_reference():
    x, mask = tiny_inputs(3), tiny_mask()
    layer = MultiHeadSelfAttention(num_heads=HEADS)
    layer.build(x.shape)
    weights = set_attention_weights(layer)
    out, probs = layer(x, padding_mask=mask, return_attention_scores=True)
    ref_out, ref_probs = np_attention(x, mask, *weights, num_heads=HEADS)
    np.testing.assert_allclose(np.asarray(out), ref_out, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(probs), ref_probs, atol=1e-6, rtol=0)
    # Without a mask every key counts.
    ref_unmasked, _ = np_attention(x, None, *weights, num_heads=HEADS)
    np.testing.assert_allclose(np.asarray(layer(x)), ref_unmasked, atol=1e-5, rtol=0)


def test_attention_probabilities_are_float32_normalised_and_zero_at_padding():
    x, mask = tiny_inputs(4), tiny_mask()
    layer = MultiHeadSelfAttention(num_heads=HEADS)
    _, probs = layer(x, padding_mask=mask, return_attention_scores=True)
    assert probs.dtype == "float32"
    probs = np.asarray(probs)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-6)
    assert np.all(probs >= 0)
    # Example 1 has padding at keys 3 and 4: no query attends there.
    assert np.all(probs[1, :, :, 3:] == 0.0), probs[1, :, :, 3:].max()
    assert np.all(probs[0] > 0)


def test_attention_heads_are_independent():
    """Changing one head's query weights changes only that head's probabilities."""
    x = tiny_inputs(5)
    layer = MultiHeadSelfAttention(num_heads=HEADS)
    layer.build(x.shape)
    set_attention_weights(layer)
    _, before = layer(x, return_attention_scores=True)
    kernel = layer.qkv_kernel.numpy()
    head_dim = HIDDEN // HEADS
    kernel[:, head_dim : 2 * head_dim] += 1.0  # head 1's query columns
    layer.qkv_kernel.assign(kernel)
    _, after = layer(x, return_attention_scores=True)
    np.testing.assert_array_equal(np.asarray(before)[:, 0], np.asarray(after)[:, 0])
    assert np.abs(np.asarray(before)[:, 1] - np.asarray(after)[:, 1]).max() > 1e-3


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_attention_all_but_one_key_masked_stays_finite(policy):
    """A -1e9 bias in float16 would be -inf (and inf - inf = nan): the mask must be
    applied in float32."""
    x = tiny_inputs(6) * 4.0
    mask = np.zeros((BATCH, SEQ), dtype="int32")
    mask[:, 0] = 1
    reference = MultiHeadSelfAttention(num_heads=HEADS)
    reference.build(x.shape)
    weights = set_attention_weights(reference)
    layer = MultiHeadSelfAttention(num_heads=HEADS, dtype=policy)
    layer.build(x.shape)
    set_attention_weights(layer)
    out, probs = layer(x, padding_mask=mask, return_attention_scores=True)
    assert out.dtype == keras.mixed_precision.DTypePolicy(policy).compute_dtype
    assert np.all(np.isfinite(np.asarray(out, dtype="float32")))
    probs = np.asarray(probs)
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs[..., 0], 1.0, atol=1e-6)
    assert np.all(probs[..., 1:] == 0.0)
    # Each query sees only key 0: output = W_o (x0 W_v + b_v) + b_o.
    ref_out, _ = np_attention(x, mask, *weights, num_heads=HEADS)
    err = np.abs(np.asarray(out, dtype="float64") - ref_out).max() / np.abs(ref_out).max()
    assert err < (1e-2 if policy == "mixed_float16" else 3e-2), err


def test_attention_rejects_indivisible_width():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadSelfAttention(num_heads=3)(tiny_inputs())


def test_attention_dropout_only_in_training():
    x = tiny_inputs(7)
    layer = MultiHeadSelfAttention(num_heads=HEADS, dropout=0.5)
    inference = [np.asarray(layer(x, training=False)) for _ in range(2)] + [np.asarray(layer(x))]
    np.testing.assert_array_equal(inference[0], inference[1])
    np.testing.assert_array_equal(inference[0], inference[2])
    trained = [np.asarray(layer(x, training=True)) for _ in range(2)]
    assert np.abs(trained[0] - inference[0]).max() > 1e-3
    assert np.abs(trained[0] - trained[1]).max() > 1e-3


# ---------------------------------------------------------------- feed-forward numerics


def test_feed_forward_matches_numpy_exact_gelu():
    x = tiny_inputs(8)
    layer = FeedForwardNetwork(INTERMEDIATE)
    layer.build(x.shape)
    w1, b1 = set_dense(layer.intermediate_dense, 10, scale=0.8)
    w2, b2 = set_dense(layer.output_dense, 11)
    np.testing.assert_allclose(np.asarray(layer(x)), np_ffn(x, w1, b1, w2, b2), atol=1e-5, rtol=0)


def test_exact_and_tanh_gelu_are_distinguishable():
    """With identity kernels the layer returns the activation itself: the erf GELU and
    its tanh approximation differ by up to ~5e-4, far above float32 noise."""
    x = np.linspace(-5.0, 5.0, 2 * 3 * HIDDEN).reshape(2, 3, HIDDEN).astype("float32")
    outputs = {}
    for activation in ("gelu", "gelu_approximate"):
        layer = FeedForwardNetwork(HIDDEN, activation=activation)
        layer.build(x.shape)
        for dense in (layer.intermediate_dense, layer.output_dense):
            dense.kernel.assign(np.eye(HIDDEN, dtype="float32"))
            dense.bias.assign(np.zeros(HIDDEN, dtype="float32"))
        outputs[activation] = np.asarray(layer(x), dtype="float64")
    exact, tanh = np_gelu_erf(x.astype("float64")), np_gelu_tanh(x.astype("float64"))
    gap = np.abs(exact - tanh).max()
    assert gap > 1e-4
    np.testing.assert_allclose(outputs["gelu"], exact, atol=2e-6, rtol=0)
    np.testing.assert_allclose(outputs["gelu_approximate"], tanh, atol=2e-6, rtol=0)
    assert np.abs(outputs["gelu"] - tanh).max() > gap / 2, "'gelu' is the tanh approximation, not erf"


def test_feed_forward_dropout_only_in_training():
    x = tiny_inputs(9)
    layer = FeedForwardNetwork(INTERMEDIATE, dropout=0.5)
    inference = np.asarray(layer(x))
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), inference)
    trained = np.asarray(layer(x, training=True))
    dropped = trained == 0.0
    assert 0.2 < dropped.mean() < 0.8, dropped.mean()
    # Inverted dropout: kept units are scaled by 1 / (1 - rate).
    np.testing.assert_allclose(trained[~dropped], 2.0 * inference[~dropped], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- position embeddings


@pytest.mark.parametrize("dim", [16, 15])
def test_sinusoidal_positions_match_formula(dim):
    length = 40
    layer = PositionalEmbedding(length, embedding_type="sinusoidal")
    x = np.zeros((2, length, dim), dtype="float32")
    out = np.asarray(layer(x))
    assert out.shape == (1, length, dim)
    np.testing.assert_allclose(out[0], np_sinusoidal(length, dim), atol=1e-5, rtol=0)
    # Shorter sequences get the first rows of the same table.
    short = np.asarray(layer(x[:, :7]))
    np.testing.assert_array_equal(short[0], out[0, :7])


def test_learned_positions_slice_to_sequence_length():
    layer = PositionalEmbedding(10)
    x = tiny_inputs()
    out = np.asarray(layer(x))
    table = layer.embeddings.numpy()
    assert table.shape == (10, HIDDEN)
    np.testing.assert_array_equal(out, table[None, :SEQ])
    # A dynamic sequence length inside a graph slices the same way.
    fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, HIDDEN), tf.float32)])
    for seq in (3, 10):
        np.testing.assert_array_equal(np.asarray(fn(tiny_inputs(seq=seq))), table[None, :seq])


@pytest.mark.parametrize("embedding_type", ["learned", "sinusoidal"])
def test_positions_longer_than_max_raise(embedding_type):
    layer = PositionalEmbedding(4, embedding_type=embedding_type)
    with pytest.raises(ValueError, match="max_sequence_length"):
        layer(tiny_inputs(seq=5))
    # Exactly max is fine.
    assert layer(tiny_inputs(seq=4)).shape == (1, 4, HIDDEN)


@pytest.mark.parametrize("embedding_type", ["learned", "sinusoidal"])
def test_positions_longer_than_max_raise_when_building_a_functional_model(embedding_type):
    """A static length known at graph construction must fail there, not at the first
    batch. Keras computes symbolic outputs from `compute_output_shape` without running
    `call`, so the check has to live there too."""
    layer = PositionalEmbedding(4, embedding_type=embedding_type)
    with pytest.raises(ValueError, match="max_sequence_length"):
        layer(keras.Input((5, HIDDEN)))


def test_positional_embedding_rejects_unknown_type():
    with pytest.raises(ValueError, match="rotary"):
        PositionalEmbedding(8, embedding_type="rotary")


# ---------------------------------------------------------------- pooler


def test_cls_pooler_is_tanh_dense_of_first_token():
    x = tiny_inputs(12)
    layer = Pooler("cls")
    layer.build(x.shape)
    w, b = set_dense(layer.dense, 13)
    expected = np.tanh(x[:, 0, :].astype("float64") @ w + b)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, atol=1e-6, rtol=0)
    # Only the first token matters.
    changed = x.copy()
    changed[:, 1:] += 5.0
    np.testing.assert_array_equal(np.asarray(layer(changed)), np.asarray(layer(x)))


def test_mean_pooler_ignores_padding():
    x, mask = tiny_inputs(14), tiny_mask()
    layer = Pooler("mean")
    out = np.asarray(layer(x, padding_mask=mask))
    expected = np.stack([x[0].mean(axis=0), x[1, :3].mean(axis=0)])
    np.testing.assert_allclose(out, expected, atol=1e-6, rtol=0)
    # Changing padded positions changes nothing.
    changed = x.copy()
    changed[1, 3:] = 1e4
    np.testing.assert_array_equal(np.asarray(layer(changed, padding_mask=mask)), out)
    # No mask: every token counts.
    np.testing.assert_allclose(np.asarray(layer(x)), x.mean(axis=1), atol=1e-6)


def test_pooler_rejects_unknown_mode():
    with pytest.raises(ValueError, match="max"):
        Pooler("max")


# ---------------------------------------------------------------- encoder block


def _set_block_weights(block, seed=20):
    """Known random weights everywhere (LayerNorm gamma/beta too, so they are used)."""
    attention = set_attention_weights(block.attention, seed=seed)
    w1, b1 = set_dense(block.feed_forward.intermediate_dense, seed + 1, scale=0.5)
    w2, b2 = set_dense(block.feed_forward.output_dense, seed + 2)
    r = rng(seed + 3)
    norms = []
    for ln in (block.attention_layer_norm, block.output_layer_norm):
        gamma = 1.0 + r.normal(scale=0.2, size=(HIDDEN,))
        beta = r.normal(scale=0.2, size=(HIDDEN,))
        ln.gamma.assign(gamma.astype("float32"))
        ln.beta.assign(beta.astype("float32"))
        norms.append((gamma, beta))
    return attention, (w1, b1, w2, b2), norms


@pytest.mark.parametrize("epsilon", [1e-12, 1e-5])
def test_encoder_block_is_post_layer_norm(epsilon):
    x, mask = tiny_inputs(15), tiny_mask()
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.3, layer_norm_epsilon=epsilon)
    block.build(x.shape)
    attention, ffn, ((g1, b1), (g2, b2)) = _set_block_weights(block)
    with skip_padding(block, "never"):  # every position computed, padding too
        out, probs = block(x, padding_mask=mask, return_attention_scores=True, training=False)
    skipped = np.asarray(block(x, padding_mask=mask, training=False))

    attended, ref_probs = np_attention(x, mask, *attention, num_heads=HEADS)
    h = np_layer_norm(x.astype("float64") + attended, g1, b1, epsilon)
    expected = np_layer_norm(h + np_ffn(h, *ffn), g2, b2, epsilon)
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(probs), ref_probs, atol=1e-6, rtol=0)
    real = mask.astype(bool)
    np.testing.assert_allclose(skipped[real], expected[real], atol=1e-5, rtol=0)
    # A pre-LN layout (x + attn(LN(x))) would not match: the test can tell them apart.
    pre_ln = x + np_attention(np_layer_norm(x.astype("float64"), g1, b1, epsilon), mask, *attention, num_heads=HEADS)[0]
    assert np.abs(pre_ln - expected).max() > 1e-2


def test_encoder_block_dropout_only_in_training():
    x, mask = tiny_inputs(16), tiny_mask()
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.5)
    block.build(x.shape)
    _set_block_weights(block)
    no_dropout = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0)
    no_dropout.build(x.shape)
    no_dropout.set_weights(block.get_weights())
    inference = np.asarray(block(x, padding_mask=mask, training=False))
    np.testing.assert_array_equal(np.asarray(block(x, padding_mask=mask)), inference)
    np.testing.assert_array_equal(np.asarray(no_dropout(x, padding_mask=mask, training=True)), inference)
    first = np.asarray(block(x, padding_mask=mask, training=True))
    second = np.asarray(block(x, padding_mask=mask, training=True))
    assert np.abs(first - inference).max() > 1e-2
    assert np.abs(first - second).max() > 1e-2


def test_encoder_block_attention_dropout_defaults_to_dropout():
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.25)
    block.build((None, SEQ, HIDDEN))
    assert block.attention.dropout == 0.25
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.25, attention_dropout=0.0)
    block.build((None, SEQ, HIDDEN))
    assert block.attention.dropout == 0.0
    assert block.get_config()["attention_dropout"] == 0.0


def test_encoder_block_fully_padded_but_one_is_finite_under_float16():
    x = tiny_inputs(17) * 10.0
    mask = np.zeros((BATCH, SEQ), dtype="int32")
    mask[:, 0] = 1
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dtype="mixed_float16")
    out = block(x, padding_mask=mask)
    assert out.dtype == "float16"
    assert np.all(np.isfinite(np.asarray(out, dtype="float32")))


@pytest.mark.parametrize("layer_cls,kwargs", [
    (TransformerEncoderBlock, {"num_heads": HEADS, "intermediate_dim": INTERMEDIATE}),
    (MultiHeadSelfAttention, {"num_heads": HEADS}),
    (FeedForwardNetwork, {"intermediate_dim": HIDDEN}),
], ids=["encoder_block", "attention", "feed_forward"])
def test_sublayer_kernels_are_initialised_independently(layer_cls, kwargs):
    """One unseeded Keras 3 initializer object returns the same values on every call:
    kernels sharing it start equal (same shape) or as prefixes of each other (the
    attention output kernel = the first rows of the QKV kernel). Every kernel must be
    drawn independently."""
    layer = layer_cls(**kwargs)
    layer.build((None, SEQ, HIDDEN))
    shared = shared_initial_values(layer)
    assert not shared, f"kernels initialised to coinciding values: {shared}"


# --------------------------------------------------------------------------- LayerNorm


def graph_uses_xla(fn, *args):
    """Whether tracing `fn(*args)` puts an XLA-compiled function (`_XlaMustCompile`) in the graph."""
    return graph_def_uses_xla(tf.function(fn).get_concrete_function(*args).graph.as_graph_def())


def numpy_layer_norm(x, gamma, beta, epsilon=1e-12):
    x = x.astype("float64")
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + epsilon) * gamma + beta


def test_layer_norm_xla_path_only_for_reduced_precision_inference_when_asked():
    x = tiny_inputs(3) * 3 + 1
    gamma, beta = rng(4).normal(1.0, 0.2, HIDDEN), rng(5).normal(0.0, 0.2, HIDDEN)
    layers = {}
    for policy, xla in (("mixed_bfloat16", False), ("mixed_bfloat16", True), ("float32", True)):
        layers[policy, xla] = LayerNorm(epsilon=1e-12, xla=xla, dtype=policy)
        layers[policy, xla].build(x.shape)
        layers[policy, xla].set_weights([gamma.astype("float32"), beta.astype("float32")])
    bf16, bf16_xla = layers["mixed_bfloat16", False], layers["mixed_bfloat16", True]
    expected = numpy_layer_norm(x, gamma, beta)  # Keras' LayerNorm normalises its input uncast
    plain = bf16(x)
    fused = bf16_xla(x)
    assert graph_uses_xla(lambda t: bf16_xla(t, training=False), x)
    assert graph_uses_xla(lambda t: bf16_xla(t), x)  # training unset: inference
    assert not graph_uses_xla(lambda t: bf16_xla(t, training=True), x)
    assert not graph_uses_xla(lambda t: bf16_xla(t, xla=False), x)  # a call may turn it off
    assert not graph_uses_xla(lambda t: layers["float32", True](t), x)
    assert not graph_uses_xla(lambda t: bf16(t), x)
    # The context sets the layers' attribute for the block and restores it after.
    with xla_layer_norm(bf16):
        assert bf16.xla and graph_uses_xla(lambda t: bf16(t), x)
        with xla_layer_norm(bf16, False):
            assert not graph_uses_xla(lambda t: bf16(t), x)
        assert bf16.xla
    assert not bf16.xla and not graph_uses_xla(lambda t: bf16(t), x)
    with xla_layer_norm(bf16_xla, False):
        assert not graph_uses_xla(lambda t: bf16_xla(t), x)
    assert bf16_xla.xla
    # Both paths round only the output to bfloat16 (8 bits of mantissa: relative error <= 2**-8).
    for out in (plain, fused):
        assert out.dtype == "bfloat16"
        np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), expected, rtol=2 ** -8, atol=1e-6)
    # The same weights and config as Keras' LayerNormalization (a drop-in for checkpoints), plus `xla`.
    revived = LayerNorm.from_config(bf16_xla.get_config())
    assert revived.epsilon == 1e-12 and revived.xla is True
    assert LayerNorm.from_config(bf16.get_config()).xla is False
    assert [w.path.split("/")[-1] for w in bf16.weights] == ["gamma", "beta"]


@pytest.mark.parametrize("how", ["constructor", "context"])
def test_encoder_block_with_xla_layer_norm_matches_the_plain_block(how):
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0, dtype="mixed_bfloat16")
    x, mask = tiny_inputs(6), tiny_mask()
    block.build(x.shape)
    plain = tf.function(lambda t, m: block(t, padding_mask=m, training=False))
    expected = tf.cast(plain(x, mask), tf.float32).numpy()
    if how == "constructor":
        other = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0, xla_layer_norm=True, dtype="mixed_bfloat16")
        other.build(x.shape)
        other.set_weights(block.get_weights())
        assert other.attention_layer_norm.xla and other.output_layer_norm.xla
        assert TransformerEncoderBlock.from_config(other.get_config()).xla_layer_norm is True
        fused = tf.function(lambda t, m: other(t, padding_mask=m, training=False))
        got = tf.cast(fused(x, mask), tf.float32).numpy()
    else:
        fused = tf.function(lambda t, m: block(t, padding_mask=m, training=False))
        with xla_layer_norm(block):
            got = tf.cast(fused(x, mask), tf.float32).numpy()
        assert not block.attention_layer_norm.xla  # restored after the block
    # traced with the XLA path: the block's LayerNorms are XLA functions; without: plain
    assert graph_def_uses_xla(fused.get_concrete_function(x, mask).graph.as_graph_def())
    assert not graph_def_uses_xla(plain.get_concrete_function(x, mask).graph.as_graph_def())
    # the same block, the normalisations computed by XLA: equal up to bfloat16 rounding
    np.testing.assert_allclose(got, expected, rtol=2 ** -6, atol=2 ** -6)


# --------------------------------------------------------------------------- skipping padding


def padded_batch(seed, lengths, seq=8):
    """Inputs (batch, seq, HIDDEN) and a padding mask with the given real lengths."""
    mask = (np.arange(seq)[None, :] < np.asarray(lengths)[:, None]).astype("int32")
    return tiny_inputs(seed, batch=len(lengths), seq=seq), mask


def computed_positions(mask):
    """By hand: the positions a block skipping padding computes, as a (batch, seq) bool array, or
    None when it keeps the padded path: the real tokens plus the first padding positions (in
    batch order) that round their count up to a multiple of seq, if that is <= 80% of the batch."""
    batch, seq = mask.shape
    rows = -(-int(mask.sum()) // seq) * seq
    if rows > 0.8 * batch * seq:
        return None
    computed = mask.astype(bool).copy()
    for flat in np.flatnonzero(~mask.astype(bool).ravel())[: rows - int(mask.sum())]:
        computed[flat // seq, flat % seq] = True
    return computed


def graph_op_types(fn, *args):
    """Every op type of the traced graph of `fn` (a tf.function, or a function to wrap in one),
    including the bodies of its functions."""
    fn = fn if hasattr(fn, "get_concrete_function") else tf.function(fn)
    return {n.op for n in graph_def_nodes(fn.get_concrete_function(*args).graph.as_graph_def())}


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_encoder_block_skips_padding_with_the_padded_results_on_real_tokens(policy):
    x, mask = padded_batch(20, [8, 3, 5, 1])  # 17 of 32 tokens are real: 24 rows computed
    computed = computed_positions(mask)
    assert computed.sum() == 24 and computed[1, 3:].all() and computed[2, 5:7].all() and not computed[3, 1:].any()
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0, dtype=policy)
    block.build(x.shape)
    _set_block_weights(block)
    skipped, probs = block(x, padding_mask=mask, return_attention_scores=True)
    with skip_padding(block, "never"):
        padded, padded_probs = block(x, padding_mask=mask, return_attention_scores=True)
    real = mask.astype(bool)
    skipped, padded = (tf.cast(t, tf.float32).numpy() for t in (skipped, padded))
    # Computed positions (real tokens and the padding that rounds their count up): the padded
    # computation's values (float32: to rounding; bfloat16: each side rounds its own
    # activations, a few bf16 ulps). The rest: zeros, not the values the padded computation
    # makes up for them.
    tolerance = 1e-5 if policy == "float32" else 2 ** -5
    np.testing.assert_allclose(skipped[computed], padded[computed], atol=tolerance, rtol=tolerance)
    assert np.all(skipped[~computed] == 0) and np.abs(padded[~computed]).max(axis=-1).min() > 1e-3
    # Attention of real queries: the same probabilities.
    queries = real[:, None, :].repeat(HEADS, 1)
    np.testing.assert_allclose(probs.numpy()[queries], padded_probs.numpy()[queries],
                               atol=1e-2 if policy != "float32" else 1e-6)


def test_encoder_block_keeps_the_padded_path_for_mostly_real_batches():
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0)
    # 31 of 32 real; and 25 of 32, which rounds up to 32 rows: both above UNPAD_BELOW.
    for lengths in ([8, 8, 8, 7], [8, 8, 8, 1]):
        x, mask = padded_batch(21, lengths)
        assert computed_positions(mask) is None
        out = block(x, padding_mask=mask).numpy()
        with skip_padding(block, "never"):
            np.testing.assert_array_equal(block(x, padding_mask=mask).numpy(), out)
        assert np.abs(out[3, 7]).max() > 1e-3  # the padding position computed, not zeroed
    # 19 real -> 24 rows: the other branch, zeros where nothing was computed.
    x, mask = padded_batch(21, [8, 8, 2, 1])
    computed = computed_positions(mask)
    assert computed is not None and not computed[3, 1:].any()
    assert np.all(block(x, padding_mask=mask).numpy()[~computed] == 0)


def test_skip_padding_traces_one_path_when_off_or_under_xla():
    x, mask = padded_batch(22, [8, 1, 1])  # 10 real -> 16 rows of 24: outside XLA, skipped
    assert computed_positions(mask) is not None
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0)
    block.build(x.shape)
    call = lambda t, m: block(t, padding_mask=m)  # noqa: E731
    assert "ScatterNd" in graph_op_types(call, x, mask)
    with skip_padding(block, "never"):
        assert "ScatterNd" not in graph_op_types(call, x, mask)
    assert block.skip_padding == "inference"  # restored after the block
    never = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0, skip_padding="never")
    assert "ScatterNd" not in graph_op_types(lambda t, m: never(t, padding_mask=m), x, mask)
    # Under XLA the row count would be padded back to its bound: the padded path only.
    jit = tf.function(call, jit_compile=True)
    assert np.abs(jit(x, mask).numpy()[2, 1:]).max(axis=-1).min() > 1e-3  # padding computed
    ops_in_jit = graph_op_types(jit, x, mask)
    assert "BatchMatMulV2" in ops_in_jit and "ScatterNd" not in ops_in_jit


def test_skipping_padding_trains_like_the_padded_block():
    """Same loss over real tokens, same gradients for every weight: the unpadded path is the
    padded computation restricted to what the real tokens depend on."""
    x, mask = padded_batch(23, [8, 2, 5])
    assert computed_positions(mask) is not None  # 15 real, 16 rows: the unpadded branch
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0)
    block.build(x.shape)
    _set_block_weights(block)
    target = rng(24).normal(size=x.shape).astype("float32")
    weights = mask[..., None].astype("float32")

    def gradients():
        with tf.GradientTape() as tape:
            out = block(x, padding_mask=mask, training=True)
            loss = tf.reduce_sum(weights * (out - target) ** 2)
        return loss.numpy(), [g.numpy() for g in tape.gradient(loss, block.trainable_weights)]

    # Training calls skip padding only when asked (the default keeps it for inference).
    call = lambda t, m: block(t, padding_mask=m, training=True)  # noqa: E731
    assert "ScatterNd" not in graph_op_types(call, x, mask)
    with skip_padding(block, "always"):
        assert "ScatterNd" in graph_op_types(call, x, mask)
        loss, grads = gradients()
    always = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0, skip_padding="always")
    assert "ScatterNd" in graph_op_types(lambda t, m: always(t, padding_mask=m, training=True), x, mask)
    padded_loss, padded_grads = gradients()
    np.testing.assert_allclose(loss, padded_loss, rtol=1e-5)
    for g, p, w in zip(grads, padded_grads, block.trainable_weights):
        np.testing.assert_allclose(g, p, atol=1e-4, rtol=1e-4, err_msg=w.path)
    assert sum(np.abs(g).sum() for g in grads) > 1.0


# --------------------------------------------------------------------------- first token only


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_encoder_block_first_token_only_is_position_zero_of_the_full_block(policy):
    x, mask = padded_batch(30, [8, 3, 5, 1])
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0, dtype=policy)
    block.build(x.shape)
    attention, ffn, ((g1, b1), (g2, b2)) = _set_block_weights(block)
    first = block(x, padding_mask=mask, first_token_only=True)
    assert tuple(first.shape) == (4, 1, HIDDEN) and first.dtype == block.compute_dtype
    first = tf.cast(first, tf.float32).numpy()[:, 0]
    # By hand: the post-LN block over the whole sequence, read at position 0.
    attended, _ = np_attention(x, mask, *attention, num_heads=HEADS)
    h = np_layer_norm(x.astype("float64") + attended, g1, b1, 1e-12)
    expected = np_layer_norm(h + np_ffn(h, *ffn), g2, b2, 1e-12)[:, 0]
    tolerance = 1e-5 if policy == "float32" else 2 ** -4  # bf16 activations: a few ulps
    np.testing.assert_allclose(first, expected, atol=tolerance, rtol=0)
    # Without a mask every position is a key.
    unmasked = np_attention(x, np.ones_like(mask), *attention, num_heads=HEADS)[0]
    h = np_layer_norm(x.astype("float64") + unmasked, g1, b1, 1e-12)
    np.testing.assert_allclose(tf.cast(block(x, first_token_only=True), tf.float32).numpy()[:, 0],
                               np_layer_norm(h + np_ffn(h, *ffn), g2, b2, 1e-12)[:, 0], atol=tolerance, rtol=0)


def test_encoder_block_first_token_only_runs_its_per_token_work_on_one_row_per_sequence():
    x, mask = padded_batch(31, [8, 8, 8])
    inner = 20  # a width no other product has
    block = TransformerEncoderBlock(HEADS, inner, dropout=0.0)
    block.build(x.shape)

    def matmul_shapes(first_token_only):
        fn = tf.function(lambda t, m: block(t, padding_mask=m, first_token_only=first_token_only))
        graph = fn.get_concrete_function(x, mask).graph
        return [tuple(op.outputs[0].shape) for op in graph.get_operations() if "MatMul" in op.type]

    # The feed-forward's first product: (3 sequences, inner), not (24 tokens, inner); the query
    # projection for 3 rows; keys and values still for all 24 tokens.
    shapes = matmul_shapes(True)
    assert (3, inner) in shapes and (24, inner) not in shapes
    assert (3, HIDDEN) in shapes and (24, 2 * HIDDEN) in shapes and (24, 3 * HIDDEN) not in shapes
    with skip_padding(block, "never"):  # one path, no branch functions to look into
        assert (24, inner) in matmul_shapes(False)


def test_encoder_block_first_token_only_trains_like_the_full_block():
    x, mask = padded_batch(32, [8, 2, 5])
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE, dropout=0.0)
    block.build(x.shape)
    _set_block_weights(block)
    target = rng(33).normal(size=(3, HIDDEN)).astype("float32")

    def gradients(first_token_only):
        with tf.GradientTape() as tape:
            out = block(x, padding_mask=mask, training=True, first_token_only=first_token_only)
            loss = tf.reduce_sum((out[:, 0] - target) ** 2)
        return loss.numpy(), [g.numpy() for g in tape.gradient(loss, block.trainable_weights)]

    loss, grads = gradients(True)
    full_loss, full_grads = gradients(False)
    np.testing.assert_allclose(loss, full_loss, rtol=1e-5)
    for g, f, w in zip(grads, full_grads, block.trainable_weights):
        np.testing.assert_allclose(g, f, atol=1e-5, rtol=1e-4, err_msg=w.path)
    assert min(np.abs(g).sum() for g in grads) > 0  # every weight, query and key/value columns too


def test_encoder_block_first_token_only_has_no_attention_scores():
    x, mask = padded_batch(34, [8, 8])
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE)
    with pytest.raises(ValueError, match="first_token_only"):
        block(x, padding_mask=mask, first_token_only=True, return_attention_scores=True)


def test_skip_padding_rejects_unknown_modes():
    with pytest.raises(ValueError, match=r"skip_padding must be one of .*got 'sometimes'"):
        TransformerEncoderBlock(HEADS, INTERMEDIATE, skip_padding="sometimes")
    block = TransformerEncoderBlock(HEADS, INTERMEDIATE)
    with pytest.raises(ValueError, match=r"got True"):
        skip_padding(block, True)
    with pytest.raises(TypeError, match=r"got False: the settings take the model first"):
        skip_padding(False)
    with pytest.raises(TypeError, match=r"got False"):
        xla_layer_norm(False)


# --------------------------------------------------------------------------- imports


def test_layer_modules_import_each_other_in_one_direction():
    """No import circle among tfdistil.layers' modules: module-level imports, read from the source
    files (not from the code under test), make a graph without cycles."""
    import ast
    import pathlib

    import tfdistil.layers

    folder = pathlib.Path(tfdistil.layers.__file__).parent
    modules = {path.stem for path in folder.glob("*.py") if path.stem != "__init__"}
    edges = {}
    for name in modules:
        tree = ast.parse((folder / f"{name}.py").read_text())
        edges[name] = {
            node.module.rsplit(".", 1)[-1] for node in tree.body
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfdistil.layers.")
        }
    assert edges["attention"] and edges["weight_casts"]  # the test reads real imports

    def reaches(start, goal, seen=()):
        return any(n == goal or (n not in seen and reaches(n, goal, seen + (n,))) for n in edges.get(start, ()))

    circles = sorted(name for name in modules if reaches(name, name))
    assert not circles, f"modules on an import circle: {circles} ({edges})"
    # Nor inside functions: a deferred import back into a module that imports this one.
    for name in modules:
        tree = ast.parse((folder / f"{name}.py").read_text())
        deferred = {
            node.module.rsplit(".", 1)[-1] for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tfdistil.layers.")
        } - edges[name]
        assert not {d for d in deferred if reaches(d, name)}, name
