"""BERT's Transformer encoder block (post-LayerNorm residuals)."""
import keras
import tensorflow as tf
from keras import ops
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.ops import control_flow_util

from tfdistil.layers.attention import MultiHeadSelfAttention, clone_initializer, project, self_attention_output_spec
from tfdistil.layers.feed_forward import FeedForwardNetwork
from tfdistil.layers.layer_norm import LayerNorm, xla_layer_norm
from tfdistil.layers.switches import TraceSwitch

# A padded batch whose real tokens are at most this fraction of batch x seq takes the
# unpadded path. Measured on bert_base, batch 8 x 128: without padding, the unpadded path
# is 5% (float32) to 10% (mixed_bfloat16) slower than the plain one (gathers and scatters);
# on SST-2 dev batches padded to their longest sentence (about 60% real tokens) it is
# 1.4x (float32) to 1.5x (mixed_bfloat16) faster.
UNPAD_BELOW = 0.8

_SKIP_PADDING = TraceSwitch(default=True)


def skip_padding(enabled=True):
    """Within this context, `TransformerEncoderBlock`s traced (or called eagerly) with a
    `padding_mask` may compute their per-token parts on the real tokens only (see
    `TransformerEncoderBlock`); on by default. `with skip_padding(False):` traces the plain
    padded computation, whatever the batch."""
    return _SKIP_PADDING.set(enabled)


def skip_padding_possible():
    """Whether the code traced now may choose the unpadded path: switched on, and not inside
    an XLA compilation (there `tf.where`'s data-dependent token count is padded back to its
    bound, so nothing would be saved)."""
    return _SKIP_PADDING.enabled() and not control_flow_util.GraphOrParentsInXlaContext(
        tf_ops.get_default_graph()
    )


@keras.saving.register_keras_serializable(package="tfdistil")
class TransformerEncoderBlock(keras.layers.Layer):
    """x = LN(x + Dropout(Attention(x))); x = LN(x + FFN(x)).

    The same block serves BERT and DistilBERT (the papers differ only in embeddings,
    pooler and depth).

    Padding is skipped where it can be: given a `padding_mask` whose batch has at most
    `UNPAD_BELOW` (80%) real tokens, the block runs everything that acts on one token at a
    time (QKV and output projections, feed-forward, residuals, LayerNorms: almost all of its
    FLOPs) on the real tokens only, and the attention on the padded layout. The real tokens'
    outputs are those of the padded computation (up to float rounding); padding positions
    come out as zeros, and so do the attention rows of padding queries differ (both are
    meaningless: every loss and head masks them). The choice is made per batch, in the
    graph; `skip_padding(False)` turns it off, and it is off inside XLA compilation.

    Args:
        num_heads: attention heads.
        intermediate_dim: feed-forward inner width.
        dropout: dropout on the attention output and the feed-forward output.
        attention_dropout: dropout on the attention probabilities (default: `dropout`).
        activation: feed-forward activation ("gelu" is the exact erf GELU).
        layer_norm_epsilon: LayerNorm epsilon (1e-12 in BERT).
        kernel_initializer: initializer of every kernel.

    Call args:
        inputs: (batch, seq, hidden_dim).
        padding_mask: (batch, seq), 1 for real tokens. Without it every position counts.
        return_attention_scores: also return (batch, heads, seq, seq) float32 probabilities.
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
        **kwargs,
    ):
        super().__init__(**kwargs)
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
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="attention_layer_norm"
        )
        self.attention_layer_norm.build(inputs_shape)
        self.feed_forward = FeedForwardNetwork(
            self.intermediate_dim, activation=self.activation, dropout=self.dropout,
            kernel_initializer=clone_initializer(self.kernel_initializer), dtype=self.dtype_policy, name="feed_forward",
        )
        self.feed_forward.build(inputs_shape)
        self.output_layer_norm = LayerNorm(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name="output_layer_norm"
        )
        self.output_layer_norm.build(inputs_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, return_attention_scores=False, training=None):
        if padding_mask is None or not skip_padding_possible():
            x, scores = self._call_padded(inputs, padding_mask, training)
        else:
            # Decided per batch: below UNPAD_BELOW real tokens, projecting only those pays for
            # the gathers and scatters; a batch without padding keeps the plain path.
            real = tf.reduce_sum(tf.cast(padding_mask, "float32"))
            x, scores = tf.cond(
                real <= UNPAD_BELOW * tf.cast(tf.size(padding_mask), "float32"),
                lambda: self._call_unpadded(inputs, padding_mask, training),
                lambda: self._call_padded(inputs, padding_mask, training),
            )
        if return_attention_scores:
            return x, scores
        return x

    def _call_padded(self, inputs, padding_mask, training):
        attended, scores = self.attention(
            inputs, padding_mask=padding_mask, return_attention_scores=True, training=training
        )
        return self._residual_blocks(inputs, attended, training), scores

    def _call_unpadded(self, inputs, padding_mask, training):
        """The same block computed on the real tokens only: everything but the attention
        itself acts on each token alone, so the QKV and output projections, the
        feed-forward network, the residuals and the LayerNorms run on a (tokens, hidden)
        matrix gathered from the batch, and only the attention sees the padded
        (batch, seq) layout. Padding positions of the output are zeros."""
        positions = tf.where(ops.cast(padding_mask, "bool"))  # (tokens, 2): (example, position)
        tokens = tf.gather_nd(inputs, positions)
        attention = self.attention
        qkv = project(tokens, attention.qkv_kernel, attention.qkv_bias)
        qkv_shape = tf.concat([tf.shape(inputs, out_type="int64")[:2], [3 * attention.hidden_dim]], axis=0)
        batch_qkv = tf.scatter_nd(positions, qkv, qkv_shape)
        context, scores = attention.attend(batch_qkv, padding_mask, training=training)
        attended = project(tf.gather_nd(context, positions), attention.output_kernel, attention.output_bias)
        # XLA compiles one LayerNorm per token count: the opt-in XLA path stays on the padded branch.
        with xla_layer_norm(False):
            tokens = self._residual_blocks(tokens, attended, training)
        return tf.scatter_nd(positions, tokens, tf.shape(inputs, out_type="int64")), scores

    def _residual_blocks(self, inputs, attended, training):
        x = self.attention_layer_norm(inputs + self.attention_dropout_layer(attended, training=training))
        return self.output_layer_norm(x + self.feed_forward(x, training=training))

    def compute_output_spec(self, inputs, padding_mask=None, return_attention_scores=False, training=None):
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
        )
        return config
