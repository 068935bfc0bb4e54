"""Multi-head self-attention with one fused QKV projection."""
import math

import keras
import tensorflow as tf
from keras import ops

from tfdistil.layers.projection import cast_weight, clone_initializer, project


def self_attention_output_spec(layer, inputs, return_attention_scores):
    """Symbolic outputs of a layer that maps (batch, seq, hidden) to the same shape in its
    compute dtype, plus (batch, layer.num_heads, seq, seq) float32 probabilities."""
    out = keras.KerasTensor(inputs.shape, dtype=layer.compute_dtype)
    if return_attention_scores:
        b, s = inputs.shape[0], inputs.shape[1]
        return out, keras.KerasTensor((b, layer.num_heads, s, s), dtype="float32")
    return out


def padding_mask_to_bias(padding_mask, dtype="float32"):
    """(batch, seq) 1/0 mask -> additive bias (batch, 1, 1, seq) in `dtype`.

    The bias is added to float32 scores (see `MultiHeadSelfAttention.call`), so
    the large negative value cannot overflow in float16.
    """
    mask = ops.cast(padding_mask, dtype)
    return ((1.0 - mask) * -1e9)[:, None, None, :]


@keras.saving.register_keras_serializable(package="tfdistil")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over `num_heads` heads.

    Args:
        num_heads: number of attention heads; must divide the input width.
        dropout: dropout rate on the attention probabilities.
        kernel_initializer: initializer of the QKV and output kernels.
        bias_initializer: initializer of the biases.

    Attributes:
        weight_casts: a `WeightCasts` whose compute-dtype copies of this layer's projection
            weights inference calls read, or None (the default: weights cast at every call).
            Set by `with casts:`; read when a call is traced.

    Call args:
        inputs: float tensor (batch, seq, hidden_dim).
        padding_mask: optional int/bool tensor (batch, seq); 1 marks real tokens.
        return_attention_scores: also return the attention probabilities
            (batch, num_heads, seq, seq), in float32.
        training: enables dropout.
    """

    def __init__(
        self,
        num_heads,
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_heads < 1:
            raise ValueError(f"`num_heads` must be >= 1, got {num_heads}.")
        self.num_heads = num_heads
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.supports_masking = False
        self.weight_casts = None

    def build(self, inputs_shape, padding_mask_shape=None):
        hidden_dim = inputs_shape[-1]
        if hidden_dim % self.num_heads:
            raise ValueError(
                f"hidden_dim={hidden_dim} is not divisible by num_heads={self.num_heads}."
            )
        self.hidden_dim = hidden_dim
        self.head_dim = hidden_dim // self.num_heads
        # One (hidden, 3 * hidden) matmul instead of three: fewer, larger GEMMs.
        self.qkv_kernel = self.add_weight(
            name="qkv_kernel", shape=(hidden_dim, 3 * hidden_dim),
            initializer=clone_initializer(self.kernel_initializer),
        )
        self.qkv_bias = self.add_weight(
            name="qkv_bias", shape=(3 * hidden_dim,), initializer=self.bias_initializer
        )
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(hidden_dim, hidden_dim),
            initializer=clone_initializer(self.kernel_initializer),
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(hidden_dim,), initializer=self.bias_initializer
        )
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, inputs, padding_mask=None, return_attention_scores=False, training=None):
        qkv = self.project_qkv(inputs, training=training)
        context, probs = self.attend(qkv, padding_mask, training=training)
        output = self.project_output(context, training=training)
        if return_attention_scores:
            return output, probs
        return output

    def projection_weights(self):
        """The kernels and biases a `WeightCasts` may hold compute-dtype copies of."""
        return [self.qkv_kernel, self.qkv_bias, self.output_kernel, self.output_bias]

    def project_qkv(self, inputs, training=None):
        """(..., hidden_dim) -> (..., 3 * hidden_dim): the fused query, key and value projection."""
        return project(inputs, self.qkv_kernel, self.qkv_bias, casts=self.weight_casts, training=training)

    def project_output(self, context, training=None):
        """(..., hidden_dim) -> (..., hidden_dim): the output projection of the attended context."""
        return project(context, self.output_kernel, self.output_bias, casts=self.weight_casts, training=training)

    def attend(self, qkv, padding_mask=None, training=None):
        """The attention between the projections: `qkv` (batch, seq, 3 * hidden_dim), the
        output of the fused QKV projection -> (context (batch, seq, hidden_dim) in qkv's
        dtype, before the output projection; probabilities (batch, num_heads, seq, seq) in
        float32). `TransformerEncoderBlock` calls it directly when it projects only the real
        tokens of a padded batch."""
        # One transpose for all three: (batch, seq, 3 * hidden) -> 3 x (batch, heads, seq, head_dim).
        query, key, value = self._split_heads(qkv, 3)
        return self._attention(query, key, value, padding_mask, training)

    def first_token(self, inputs, padding_mask=None, training=None):
        """The attention output (after the output projection) of the first position only:
        inputs (batch, seq, hidden_dim) -> (batch, 1, hidden_dim). The query is projected for
        that position alone, keys and values for all; what a [CLS] classifier needs from its
        last block (`TransformerEncoderBlock`, `first_token_only=True`)."""
        hidden = self.hidden_dim
        kernel = cast_weight(self.qkv_kernel, inputs.dtype, self.weight_casts, training)
        bias = cast_weight(self.qkv_bias, inputs.dtype, self.weight_casts, training)
        # The fused kernel's columns are [query | key | value].
        query = project(inputs[:, :1], kernel[:, :hidden], bias[:hidden])
        key, value = self._split_heads(project(inputs, kernel[:, hidden:], bias[hidden:]), 2)
        (query,) = self._split_heads(query, 1)
        context, _ = self._attention(query, key, value, padding_mask, training)
        return self.project_output(context, training=training)

    def _split_heads(self, packed, parts):
        """(batch, seq, parts * hidden_dim) -> `parts` tensors (batch, heads, seq, head_dim),
        with one transpose for all of them."""
        batch, seq = ops.shape(packed)[0], ops.shape(packed)[1]
        packed = ops.reshape(packed, (batch, seq, parts, self.num_heads, self.head_dim))
        # (batch, seq, parts, heads, head_dim) -> (parts, batch, heads, seq, head_dim). Unstack
        # rather than index: the gradient of unstack is one stack, where slices would each
        # scatter into a full-size zero tensor.
        return ops.unstack(ops.transpose(packed, (2, 0, 3, 1, 4)), parts, axis=0)

    def _attention(self, query, key, value, padding_mask, training):
        """Heads (batch, heads, seq_q or seq, head_dim) -> (context (batch, seq_q, hidden_dim),
        probabilities (batch, heads, seq_q, seq) float32)."""
        # Scale the query, not the scores: one (seq x head_dim) multiply.
        query = query * ops.cast(1.0 / math.sqrt(self.head_dim), query.dtype)
        # (batch, heads, seq_q, seq_k)
        scores = tf.matmul(query, key, transpose_b=True)
        # Softmax in float32: exp() of bf16/fp16 scores loses too much.
        scores = ops.cast(scores, "float32")
        if padding_mask is not None:
            scores = scores + padding_mask_to_bias(padding_mask)
        probs = ops.softmax(scores, axis=-1)
        dropped = self.dropout_layer(ops.cast(probs, value.dtype), training=training)
        # (batch, heads, seq_q, head_dim) -> (batch, seq_q, heads, head_dim) -> (batch, seq_q, hidden)
        context = ops.transpose(ops.matmul(dropped, value), (0, 2, 1, 3))
        return ops.reshape(context, (ops.shape(query)[0], ops.shape(query)[2], self.hidden_dim)), probs

    def compute_output_spec(self, inputs, padding_mask=None, return_attention_scores=False, training=None):
        return self_attention_output_spec(self, inputs, return_attention_scores)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
