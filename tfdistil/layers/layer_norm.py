"""LayerNorm with an opt-in XLA path for reduced-precision inference.

Under mixed_bfloat16 Keras computes LayerNorm in float32 between two casts, as a chain of
small ops that oneDNN does not fuse: on this project's CPU one bert_base LayerNorm at batch
8 x 128 took 2.1 ms, against 3.1 ms for a 768 x 768 matmul. The same computation compiled
by XLA as one cluster takes 0.8 ms. In float32 oneDNN already fuses Keras' LayerNorm (XLA is
slower there) and in training the XLA cluster brought nothing, so the XLA path is taken only
for inference calls (`training` not true) of layers computing in bfloat16 or float16, and
only inside `xla_layer_norm()`. It is off by default because a graph holding an XLA cluster
asks whoever runs it (TF Serving, TFLite) for XLA support: exported SavedModels are traced
without it.
"""
import functools

import keras

from tfdistil.layers.switches import TraceSwitch

_XLA_LAYER_NORM = TraceSwitch(default=False)


def xla_layer_norm_enabled():
    """Whether calls traced now take the XLA LayerNorm path (see `xla_layer_norm`)."""
    return _XLA_LAYER_NORM.enabled()


def xla_layer_norm(enabled=True):
    """Within this context, `LayerNorm` layers traced or called for inference in bfloat16 or
    float16 compute their normalisation as one XLA-compiled function. The choice is read when a
    `tf.function` is traced: trace (or first call) the function inside the context."""
    return _XLA_LAYER_NORM.set(enabled)


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
    in this module's docstring (same weights, same config; results equal up to rounding)."""

    def call(self, inputs, training=None):
        if (
            not training
            and xla_layer_norm_enabled()
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
