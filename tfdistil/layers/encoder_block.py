"""BERT's Transformer encoder block (post-LayerNorm residuals)."""
import keras

from tfdistil.layers.attention import MultiHeadSelfAttention, clone_initializer, self_attention_output_spec
from tfdistil.layers.feed_forward import FeedForwardNetwork
from tfdistil.layers.layer_norm import LayerNorm


@keras.saving.register_keras_serializable(package="tfdistil")
class TransformerEncoderBlock(keras.layers.Layer):
    """x = LN(x + Dropout(Attention(x))); x = LN(x + FFN(x)).

    The same block serves BERT and DistilBERT (the papers differ only in embeddings,
    pooler and depth).

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
        padding_mask: (batch, seq), 1 for real tokens.
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
        attended = self.attention(
            inputs, padding_mask=padding_mask, return_attention_scores=return_attention_scores,
            training=training,
        )
        if return_attention_scores:
            attended, scores = attended
        x = self.attention_layer_norm(inputs + self.attention_dropout_layer(attended, training=training))
        x = self.output_layer_norm(x + self.feed_forward(x, training=training))
        if return_attention_scores:
            return x, scores
        return x

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
