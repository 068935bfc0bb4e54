"""LayerNorm with an opt-in XLA path for reduced-precision inference.

Under mixed_bfloat16 Keras computes LayerNorm in float32 between two casts, as a chain of small
ops that oneDNN does not fuse; compiled by XLA as one cluster it is much faster on CPU. In float32
oneDNN already fuses Keras' LayerNorm and in training the cluster brought nothing, so the XLA path
is taken only for inference calls (`training` not true) of layers computing in bfloat16 or
float16, and only when asked (`LayerNorm(xla=True)`). It is off by default because a graph
holding an XLA cluster asks whoever runs it (TF Serving, TFLite) for XLA support: exports trace
with it off (`xla_layer_norm(model, False)`).
"""
import functools

import keras

from tfdistil.layers.settings import layers_of_type, overriding


def xla_layer_norm(model, enabled=True):
    """A context in which every `LayerNorm` under `model` (a layer or model, itself included) has
    `xla=enabled`: functions traced (or first called) inside keep that choice. Exports use
    `xla_layer_norm(model, False)`; `TransformerEncoderBlock(xla_layer_norm=...)` and the backbones'
    argument of the same name make the choice for good."""
    return overriding(layers_of_type(model, LayerNorm), "xla", bool(enabled))


@functools.cache
def _compiled_layer_norm():
    """The XLA-compiled normalisation (built on first use: the layer itself needs no TF import
    on other backends)."""
    import tensorflow as tf

    @tf.function(jit_compile=True, reduce_retracing=True)
    def normalise(x, gamma, beta, epsilon, dtype):
        x32 = tf.cast(x, tf.float32)
        mean, variance = tf.nn.moments(x32, axes=[-1], keepdims=True)
        y = (x32 - mean) * tf.math.rsqrt(variance + epsilon) * tf.cast(gamma, tf.float32)
        return tf.cast(y + tf.cast(beta, tf.float32), dtype)

    return normalise


@keras.saving.register_keras_serializable(package="tfdistil")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis, with the opt-in XLA path described
    in this module's docstring (same weights; results equal up to rounding).

    Args:
        xla: take the XLA path in reduced-precision inference calls (default False).
        **kwargs: `keras.layers.LayerNormalization`'s.

    Call args:
        xla: overrides the layer's `xla` for this call (None: the layer's).
    """

    def __init__(self, xla=False, **kwargs):
        super().__init__(**kwargs)
        self.xla = bool(xla)

    def call(self, inputs, training=None, xla=None):
        if (
            not training
            and (self.xla if xla is None else xla)
            and self.compute_dtype in ("bfloat16", "float16")
            and keras.backend.backend() == "tensorflow"
            and self.center and self.scale and not self.rms_scaling
            and tuple(self.axis) in ((-1,), (len(inputs.shape) - 1,))
        ):
            import tensorflow as tf

            gamma, beta = tf.convert_to_tensor(self.gamma), tf.convert_to_tensor(self.beta)
            epsilon = tf.constant(self.epsilon, tf.float32)
            # Keras' LayerNormalization takes its input uncast and returns the compute dtype.
            return _compiled_layer_norm()(inputs, gamma, beta, epsilon, tf.as_dtype(self.compute_dtype))
        return super().call(inputs)

    def get_config(self):
        return dict(super().get_config(), xla=self.xla)
