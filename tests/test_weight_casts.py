"""tfdistil.layers.WeightCasts: projection weights cast to the compute dtype once.

The reference for every output is the same model traced without the copies (Keras' per-call
cast of the float32 weights), and for the copies' values numpy's own float32 -> bfloat16/float16
rounding (ml_dtypes, as numpy knows those dtypes)."""
import keras
import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf

from tfdistil.layers import FeedForwardNetwork, MultiHeadSelfAttention, WeightCasts
from tfdistil.layers.settings import layers_of_type
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier, TokenClassifier

VOCAB, SEQ = 40, 6
NUMPY_DTYPES = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def tiny(cls, dtype, num_layers=2):
    return cls(VOCAB, num_layers=num_layers, num_heads=2, hidden_dim=8, intermediate_dim=16,
               max_sequence_length=16, dtype=dtype)


def randomize(model, seed=0):
    """Weights of spread-out values (biases too, so their copies matter), drawn in float32."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.5, variable.shape).astype("float32"))
    return model


def inputs(padded=True):
    ids = np.random.default_rng(1).integers(5, VOCAB, (3, SEQ)).astype("int32")
    mask = np.ones((3, SEQ), "int32")
    if padded:
        mask[1, 4:] = 0
        mask[2, 2:] = 0
    return {"token_ids": tf.constant(ids), "segment_ids": tf.zeros((3, SEQ), tf.int32),
            "padding_mask": tf.constant(mask)}


def traced(model, feed, casts=None):
    """(inference function, the tf.Variables its graph reads), traced with `casts` in scope."""
    fn = tf.function(lambda x: model(x, training=False))
    if casts is None:
        concrete = fn.get_concrete_function(feed)
    else:
        with casts:
            concrete = fn.get_concrete_function(feed)
    return concrete, {id(v) for v in concrete.variables}


def tf_id(keras_variable):
    # Private Keras API: Keras 3 has no public accessor for a Keras variable's backing tf.Variable.
    return id(keras_variable._value)


@pytest.mark.parametrize("dtype", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("make", [
    lambda d: TextClassifier(tiny(BertBackbone, d), num_classes=3),  # first-token last block
    lambda d: TokenClassifier(tiny(DistilBertBackbone, d), num_classes=4),
    lambda d: tiny(BertBackbone, d),
], ids=["classifier", "tagger", "backbone"])
@pytest.mark.parametrize("padded", [True, False], ids=["padded", "full"])
def test_outputs_are_bit_identical_and_the_graph_reads_only_the_copies(make, dtype, padded):
    keras.utils.set_random_seed(0)
    model = randomize(make(dtype))
    casts = WeightCasts(model)
    compute = dtype.removeprefix("mixed_")
    # Two layers x (QKV and output kernels and biases, two dense kernels and biases).
    assert len(casts) == 2 * 8
    for original, copy in zip(casts.originals, casts.variables):
        assert copy.dtype == compute and not copy.trainable
        np.testing.assert_array_equal(copy.numpy(), np.asarray(original.numpy()).astype(NUMPY_DTYPES[compute]))
    feed = inputs(padded)
    plain, plain_reads = traced(model, feed)
    cast_once, cast_reads = traced(model, feed, casts)
    copies = {id(v) for v in casts.variables}
    originals = {tf_id(v) for v in casts.originals}
    assert originals <= plain_reads and not copies & plain_reads
    assert copies <= cast_reads and not originals & cast_reads
    for a, b in zip(tf.nest.flatten(plain(feed)), tf.nest.flatten(cast_once(feed))):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Outside the context, functions traced later cast per call again.
    _, later_reads = traced(model, feed)
    assert originals <= later_reads and not copies & later_reads


def test_float32_model_has_nothing_to_cast():
    assert len(WeightCasts(tiny(BertBackbone, "float32"))) == 0


def test_training_calls_read_the_float32_weights():
    keras.utils.set_random_seed(0)
    backbone = BertBackbone(VOCAB, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
                            max_sequence_length=16, dropout=0.0, dtype="mixed_bfloat16")
    model = randomize(TextClassifier(backbone, num_classes=3, dropout=0.0))
    casts = WeightCasts(model)
    feed, labels = inputs(), tf.constant([0, 1, 2])

    @tf.function
    def gradients():
        with tf.GradientTape() as tape:
            logits = model(feed, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return tape.gradient(loss, casts.originals)

    expected = [g.numpy() for g in gradients()]
    with casts:  # a second trace, in the scope
        got = [g.numpy() for g in tf.function(gradients.python_function)()]
    for original, a, b in zip(casts.originals, expected, got):
        assert np.abs(a).max() > 0, original.path
        np.testing.assert_array_equal(b, a)


def test_copies_are_a_snapshot_until_refreshed():
    keras.utils.set_random_seed(0)
    model = randomize(tiny(BertBackbone, "mixed_bfloat16"))
    casts = WeightCasts(model)
    feed = inputs()
    with casts:
        infer = tf.function(lambda x: model(x, training=False))
        before = infer(feed)["sequence_output"].numpy()
    randomize(model, seed=7)  # as training or a loaded checkpoint would
    fresh = tf.function(lambda x: model(x, training=False))(feed)["sequence_output"].numpy()
    assert np.abs(fresh - before).max() > 0.1
    # Stale: still the old projections (only the other weights changed).
    stale = infer(feed)["sequence_output"].numpy()
    assert np.abs(stale - fresh).max() > 0.1 and np.abs(stale - before).max() > 0
    casts.refresh()
    np.testing.assert_array_equal(infer(feed)["sequence_output"].numpy(), fresh)


def test_the_context_sets_the_layers_attribute_and_restores_it():
    model = TextClassifier(tiny(BertBackbone, "mixed_bfloat16"), num_classes=3)
    projections = layers_of_type(model, (MultiHeadSelfAttention, FeedForwardNetwork))
    assert len(projections) == 4 and all(layer.weight_casts is None for layer in projections)
    casts, other = WeightCasts(model), WeightCasts(model)
    with casts:
        assert all(layer.weight_casts is casts for layer in projections)
        with other, casts:  # entered again inside: each exit restores what was there before
            assert all(layer.weight_casts is casts for layer in projections)
        assert all(layer.weight_casts is casts for layer in projections)
    assert all(layer.weight_casts is None for layer in projections)
    # Set for good: an explicit attribute that any later trace reads.
    feed = inputs()
    for layer in projections:
        layer.weight_casts = casts
    _, reads = traced(model, feed)
    assert {id(v) for v in casts.variables} <= reads
    assert not {tf_id(v) for v in casts.originals} & reads


# ----- the Keras model vs its export at a (32, 32) batch (issue 28, item 12) ----------------


@pytest.mark.parametrize("dtype", ["mixed_bfloat16", "mixed_float16"])
def test_export_agrees_with_keras_to_the_stated_tolerance_at_32_by_32(dtype, tmp_path):
    """What README and docs/performance.md state: an export of a mixed-policy model gives the Keras
    model's outputs to the compute dtype's rounding, not bit for bit (Keras runs op by op; the
    export's graph runs oneDNN's fused MatMul + BiasAdd (+ activation) kernels, which round once
    where eager rounds after each op): max |keras - export| <= MODEL_PRECISION_RTOL (the bar a
    reduced-precision model meets against float32) x max |logit|. (That the cast projections give
    the float32-weight export's outputs bit for bit: test_export's mixed-precision test.) A
    bert_tiny-size classifier with weights of BERT's scale, random (32, 32) batches padded at
    random lengths."""
    from harness import MODEL_PRECISION_RTOL
    from tfdistil.export import export_saved_model
    from tfdistil.text import WordPieceTokenizer

    vocab_size, seq = 300, 32
    keras.utils.set_random_seed(0)
    backbone = BertBackbone.from_preset("bert_tiny", vocabulary_size=vocab_size, max_sequence_length=seq,
                                        dtype=dtype)
    model = TextClassifier(backbone, num_classes=2)
    rng = np.random.default_rng(0)
    for variable in model.weights:
        if not variable.path.endswith("gamma"):
            variable.assign(rng.normal(0, 0.05, variable.shape).astype("float32"))
    tokenizer = WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
                                   + [f"w{i}" for i in range(vocab_size - 5)], sequence_length=seq)
    export = tf.saved_model.load(str(export_saved_model(model, tokenizer, tmp_path / "m", allow_untrained=True)))
    rtol = MODEL_PRECISION_RTOL[dtype]
    for _ in range(4):
        ids = rng.integers(5, vocab_size, (32, seq)).astype("int32")
        mask = (np.arange(seq) < rng.integers(1, seq + 1, (32, 1))).astype("int32")
        feed = {"token_ids": tf.constant(ids * mask), "segment_ids": tf.zeros((32, seq), tf.int32),
                "padding_mask": tf.constant(mask)}
        served = export.signatures["logits"](**feed)["logits"].numpy()
        expected = model(feed, training=False).numpy().astype("float32")
        assert np.abs(served - expected).max() <= rtol * np.abs(expected).max(), (
            np.abs(served - expected).max(), np.abs(expected).max())
