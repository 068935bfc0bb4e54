"""BERT's Transformer encoder block (post-LayerNorm residuals)."""
import keras
import tensorflow as tf

# Private TensorFlow API: TF has no public test for "this graph is being compiled by XLA".
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.ops import control_flow_util

from tfdistil.layers.attention import MultiHeadSelfAttention, self_attention_output_spec
from tfdistil.layers.feed_forward import FeedForwardNetwork
from tfdistil.layers.layer_norm import LayerNorm
from tfdistil.layers.projection import clone_initializer
from tfdistil.layers.settings import layers_of_type, overriding

# A padded batch whose computed rows (see `token_positions`) are at most this fraction of
# batch x seq takes the unpadded path: below it the gathers and scatters cost less than the
# padding positions they skip (measured on bert_base inference; see the commit history).
UNPAD_BELOW = 0.8

# `TransformerEncoderBlock(skip_padding=...)`: which calls may compute the real tokens only.
SKIP_PADDING_MODES = ("inference", "always", "never")


def check_skip_padding(mode):
    if mode not in SKIP_PADDING_MODES:
        raise ValueError(f"skip_padding must be one of {SKIP_PADDING_MODES}, got {mode!r}.")
    return mode


def skip_padding(model, mode="inference"):
    """A context in which every `TransformerEncoderBlock` under `model` (a layer or model, itself
    included) has `skip_padding=mode`: "inference" (the default), "always" (training calls too)
    or "never". Functions traced (or first called) inside keep that choice; the constructors'
    `skip_padding` argument (blocks and backbones) makes it for good."""
    return overriding(layers_of_type(model, TransformerEncoderBlock), "skip_padding", check_skip_padding(mode))


def token_positions(padding_mask):
    """The rows of the flattened (batch * seq) batch that a block skipping padding computes:
    every real token (in order), then the first padding positions needed to round their count
    up to a multiple of seq. The rounding keeps the matmul shapes a model meets to at most
    `batch` per padded length, as with padded batches, instead of one per token count (oneDNN
    prepares a kernel per shape)."""
    flat = tf.reshape(tf.cast(padding_mask, "int32"), [-1])
    # A stable sort on "is padding" puts the real tokens first, each group in batch order.
    return tf.argsort(1 - flat, stable=True)[: _rows_computed(padding_mask)]


def _rows_computed(padding_mask):
    """How many rows `token_positions` returns: the real tokens rounded up to a multiple of seq."""
    real = tf.reduce_sum(tf.cast(padding_mask, "int32"))
    seq = tf.shape(padding_mask)[1]
    return tf.minimum((real + seq - 1) // seq * seq, tf.size(padding_mask))


def in_xla_compilation():
    """Whether the code traced now is compiled by XLA (which pads a data-dependent row count back
    to its bound, so skipping padding would save nothing there)."""
    return control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph())


@keras.saving.register_keras_serializable(package="tfdistil")
class TransformerEncoderBlock(keras.layers.Layer):
    """x = LN(x + Dropout(Attention(x))); x = LN(x + FFN(x)).

    The same block serves BERT and DistilBERT (the papers differ only in embeddings,
    pooler and depth).

    Padding is skipped where it can be: given a `padding_mask`, the block runs everything
    that acts on one token at a time (QKV and output projections, feed-forward, residuals,
    LayerNorms: almost all of its FLOPs) on the real tokens only, their count rounded up to a
    multiple of seq with padding positions (`token_positions`), and the attention on the
    padded layout; it does so when those rows are at most `UNPAD_BELOW` (80%) of batch x seq.
    Real tokens get the padded computation's outputs (up to float rounding), and so do the
    padding positions computed for the rounding; the other padding positions come out as
    zeros, and attention rows of padding queries differ (meaningless either way: every loss
    and head masks them). The choice is made per batch, in the graph. Which calls may skip
    padding is the `skip_padding` argument; never inside XLA compilation.

    Training skips padding only when asked ("always"): its unpadded branch and gradient make the
    train step slower to trace and to run first, which a long run repays and a short one does not.

    Args:
        num_heads: attention heads.
        intermediate_dim: feed-forward inner width.
        dropout: dropout on the attention output and the feed-forward output.
        attention_dropout: dropout on the attention probabilities (default: `dropout`).
        activation: feed-forward activation ("gelu" is the exact erf GELU).
        layer_norm_epsilon: LayerNorm epsilon (1e-12 in BERT).
        kernel_initializer: initializer of every kernel.
        skip_padding: "inference" (default: inference calls, `training` not true, skip padding),
            "always" (training calls too) or "never".
        xla_layer_norm: the LayerNorms take their XLA path in reduced-precision inference
            (`LayerNorm(xla=True)`; default False).

    Call args:
        inputs: (batch, seq, hidden_dim).
        padding_mask: (batch, seq), 1 for real tokens. Without it every position counts.
        return_attention_scores: also return (batch, heads, seq, seq) float32 probabilities.
        first_token_only: compute the first ([CLS]) position only and return
            (batch, 1, hidden_dim), what a [CLS] classifier needs from its last block: the
            query, output projection, feed-forward and LayerNorms run on one row per
            sequence, keys and values on all. Not with `return_attention_scores`.
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        dropout=0.1,
        attention_dropout=None,
        activation="gelu",
        layer_norm_epsilon=1e-12,
        kernel_initializer="glorot_uniform",
        skip_padding="inference",
        xla_layer_norm=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.skip_padding = check_skip_padding(skip_padding)
        self.xla_layer_norm = bool(xla_layer_norm)
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, inputs_shape, padding_mask_shape=None):
        attention_dropout = self.dropout if self.attention_dropout is None else self.attention_dropout
        self.attention = MultiHeadSelfAttention(
            self.num_heads, dropout=attention_dropout, kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy, name="attention",
        )
        self.attention.build(inputs_shape)
        self.attention_dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.attention_layer_norm = LayerNorm(
            epsilon=self.layer_norm_epsilon, xla=self.xla_layer_norm, dtype=self.dtype_policy,
            name="attention_layer_norm",
        )
        self.attention_layer_norm.build(inputs_shape)
        self.feed_forward = FeedForwardNetwork(
            self.intermediate_dim, activation=self.activation, dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer), dtype=self.dtype_policy, name="feed_forward",
        )
        self.feed_forward.build(inputs_shape)
        self.output_layer_norm = LayerNorm(
            epsilon=self.layer_norm_epsilon, xla=self.xla_layer_norm, dtype=self.dtype_policy,
            name="output_layer_norm",
        )
        self.output_layer_norm.build(inputs_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, return_attention_scores=False, first_token_only=False, training=None):
        if first_token_only:
            if return_attention_scores:
                raise ValueError("`first_token_only=True` returns no attention scores; call without them.")
            # The [CLS] position's output only: its query against every key and value.
            first = self.attention.first_token(inputs, padding_mask=padding_mask, training=training)
            return self._residual_blocks(inputs[:, :1], first, training)
        if padding_mask is None or not self._may_skip_padding(training):
            x, scores = self._call_padded(inputs, padding_mask, training)
        else:
            # Decided per batch: up to UNPAD_BELOW of batch x seq, computing only those rows pays
            # for the gathers and scatters; a batch without padding keeps the plain path (and
            # pays only this count, not the sort in `token_positions`).
            rows = tf.cast(_rows_computed(padding_mask), "float32")
            x, scores = tf.cond(
                rows <= UNPAD_BELOW * tf.cast(tf.size(padding_mask), "float32"),
                lambda: self._call_unpadded(inputs, padding_mask, training),
                lambda: self._call_padded(inputs, padding_mask, training),
            )
        if return_attention_scores:
            return x, scores
        return x

    def _may_skip_padding(self, training):
        """Whether this call may take the unpadded path (`skip_padding`, never under XLA)."""
        wanted = self.skip_padding == "always" or (self.skip_padding == "inference" and not training)
        return wanted and not in_xla_compilation()

    def _call_padded(self, inputs, padding_mask, training):
        attended, scores = self.attention(
            inputs, padding_mask=padding_mask, return_attention_scores=True, training=training
        )
        return self._residual_blocks(inputs, attended, training), scores

    def _call_unpadded(self, inputs, padding_mask, training):
        """The same block computed on the rows `positions` of the flattened batch (see
        `token_positions`): everything but the attention itself acts on each token alone, so
        the QKV and output projections, the feed-forward network, the residuals and the
        LayerNorms run on a (rows, hidden) matrix gathered from the batch, and only the
        attention sees the padded (batch, seq) layout. Positions not computed come out zero."""
        positions = token_positions(padding_mask)
        hidden = inputs.shape[-1]
        flat_size = tf.size(padding_mask)
        tokens = tf.gather(tf.reshape(inputs, (-1, hidden)), positions)
        attention = self.attention
        qkv = attention.project_qkv(tokens, training=training)
        qkv = tf.scatter_nd(positions[:, None], qkv, tf.stack([flat_size, 3 * hidden]))
        qkv = tf.reshape(qkv, tf.concat([tf.shape(inputs)[:2], [3 * hidden]], axis=0))
        context, scores = attention.attend(qkv, padding_mask, training=training)
        context = tf.gather(tf.reshape(context, (-1, hidden)), positions)
        attended = attention.project_output(context, training=training)
        # XLA compiles one LayerNorm per row count: the opt-in XLA path stays on the padded branch.
        tokens = self._residual_blocks(tokens, attended, training, xla=False)
        out = tf.scatter_nd(positions[:, None], tokens, tf.stack([flat_size, hidden]))
        return tf.reshape(out, tf.shape(inputs)), scores

    def _residual_blocks(self, inputs, attended, training, xla=None):
        x = self.attention_layer_norm(inputs + self.attention_dropout_layer(attended, training=training), xla=xla)
        return self.output_layer_norm(x + self.feed_forward(x, training=training), xla=xla)

    def compute_output_spec(
        self, inputs, padding_mask=None, return_attention_scores=False, first_token_only=False, training=None
    ):
        if first_token_only:
            return keras.KerasTensor((inputs.shape[0], 1, inputs.shape[2]), dtype=self.compute_dtype)
        return self_attention_output_spec(self, inputs, return_attention_scores)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            intermediate_dim=self.intermediate_dim,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            skip_padding=self.skip_padding,
            xla_layer_norm=self.xla_layer_norm,
        )
        return config
