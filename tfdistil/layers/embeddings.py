"""Position embeddings: learned (BERT) or fixed sinusoidal (Vaswani et al.)."""
import math

import keras
import numpy as np
from keras import ops


def check_sequence_length(seq_len, max_sequence_length):
    """ValueError when a static sequence length exceeds the model's maximum."""
    if seq_len is not None and not hasattr(seq_len, "shape") and seq_len > max_sequence_length:
        raise ValueError(
            f"Input sequence length {seq_len} exceeds max_sequence_length={max_sequence_length}. "
            "Truncate the inputs (the tokenizer's `sequence_length`) or build a model with a "
            "larger `max_sequence_length`."
        )


def sinusoidal_table(length, dim):
    """The original Transformer's table: sin on even, cos on odd channels."""
    position = np.arange(length, dtype="float64")[:, None]
    rate = np.exp(-math.log(10000.0) * np.arange(0, dim, 2, dtype="float64") / dim)
    table = np.zeros((length, dim), dtype="float64")
    table[:, 0::2] = np.sin(position * rate)
    table[:, 1::2] = np.cos(position * rate[: dim // 2])
    return table.astype("float32")


@keras.saving.register_keras_serializable(package="tfdistil")
class PositionalEmbedding(keras.layers.Layer):
    """Returns the position embeddings for the positions of `inputs`.

    Args:
        sequence_length: the largest number of positions (`max_sequence_length`).
        embedding_type: "learned" (a trainable table, BERT) or "sinusoidal" (fixed).
        initializer: initializer of the learned table.

    Call args:
        inputs: tensor (batch, seq, hidden_dim) (e.g. token embeddings).
    Returns:
        (1, seq, hidden_dim) position embeddings, broadcastable onto `inputs`.
    """

    def __init__(self, sequence_length, embedding_type="learned", initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if embedding_type not in ("learned", "sinusoidal"):
            raise ValueError(
                f"embedding_type must be 'learned' or 'sinusoidal', got {embedding_type!r}."
            )
        self.sequence_length = sequence_length
        self.embedding_type = embedding_type
        self.initializer = keras.initializers.get(initializer)

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        if self.embedding_type == "learned":
            self.embeddings = self.add_weight(
                name="embeddings", shape=(self.sequence_length, hidden_dim),
                initializer=self.initializer,
            )
        else:
            self._table = sinusoidal_table(self.sequence_length, hidden_dim)
        self.built = True

    def call(self, inputs):
        seq_len = inputs.shape[1]
        check_sequence_length(seq_len, self.sequence_length)
        if seq_len is None:
            seq_len = ops.shape(inputs)[1]
        table = self.embeddings if self.embedding_type == "learned" else ops.convert_to_tensor(self._table)
        # (1, seq, hidden)
        return ops.cast(table[None, :seq_len, :], self.compute_dtype)

    def compute_output_shape(self, inputs_shape):
        check_sequence_length(inputs_shape[1], self.sequence_length)
        return (1,) + tuple(inputs_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(
            sequence_length=self.sequence_length,
            embedding_type=self.embedding_type,
            initializer=keras.initializers.serialize(self.initializer),
        )
        return config
