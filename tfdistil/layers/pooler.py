"""Sentence pooling: BERT's tanh dense on [CLS], or a mean over real tokens."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfdistil")
class Pooler(keras.layers.Layer):
    """Pools (batch, seq, hidden) to (batch, hidden).

    Args:
        mode: "cls" — BERT's pooler, tanh(Dense(hidden)) of the first token;
            "mean" — average of the tokens where `padding_mask` is 1 (sentence embeddings,
            as sentence-transformers), no weights.
        kernel_initializer: initializer of the "cls" dense kernel.

    Call args:
        inputs: (batch, seq, hidden) sequence output.
        padding_mask: (batch, seq), needed for "mean" (all tokens count when omitted).
    """

    def __init__(self, mode="cls", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("cls", "mean"):
            raise ValueError(f"Pooler mode must be 'cls' or 'mean', got {mode!r}.")
        self.mode = mode
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, inputs_shape, padding_mask_shape=None):
        if self.mode == "cls":
            self.dense = keras.layers.Dense(
                inputs_shape[-1], activation="tanh", kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy, name="dense",
            )
            self.dense.build((inputs_shape[0], inputs_shape[-1]))
        self.built = True

    def call(self, inputs, padding_mask=None):
        if self.mode == "cls":
            return self.dense(inputs[:, 0, :])
        if padding_mask is None:
            return ops.mean(inputs, axis=1)
        # Sum in float32: a bf16 sum over hundreds of tokens drifts.
        mask = ops.cast(padding_mask, "float32")[:, :, None]
        total = ops.sum(ops.cast(inputs, "float32") * mask, axis=1)
        count = ops.maximum(ops.sum(mask, axis=1), 1e-9)
        return ops.cast(total / count, self.compute_dtype)

    def compute_output_shape(self, inputs_shape, padding_mask_shape=None):
        return (inputs_shape[0], inputs_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
