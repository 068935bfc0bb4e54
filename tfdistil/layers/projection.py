"""The projection helpers the attention and feed-forward layers share: fresh initializers, and
`inputs @ kernel + bias` as one fusable 2-D MatMul + BiasAdd."""
import keras
import tensorflow as tf
from keras import ops


def clone_initializer(initializer):
    """A fresh copy: an unseeded Keras 3 initializer returns the same values on every call,
    so weights sharing one object would start identical."""
    if isinstance(initializer, keras.initializers.Initializer):
        return initializer.__class__.from_config(initializer.get_config())
    return initializer


def cast_weight(weight, dtype, casts=None, training=None):
    """`weight` as `dtype`: for inference calls (`training` not true) its copy in `casts` (a
    `WeightCasts`) when it has one in that dtype, else a cast."""
    if casts is not None and not training:
        copy = casts.copy_of(weight)
        if copy is not None and copy.dtype == dtype:
            return copy
    return ops.cast(weight, dtype)


def project(inputs, kernel, bias, activation=None, casts=None, training=None):
    """`activation(inputs @ kernel + bias)` over the last axis, computed as one 2-D MatMul and a
    BiasAdd, with the weights in the inputs' dtype (`cast_weight`: `casts`' copies for inference).

    On CPU, TensorFlow's oneDNN rewrite fuses MatMul + BiasAdd (+ GELU or ReLU) into one kernel;
    it does not for the batched matmul a 3-D input gets, nor for a broadcast add.
    """
    leading = ops.shape(inputs)[:-1]
    # (batch, seq, in) -> (batch * seq, in)
    x = ops.reshape(inputs, (-1, inputs.shape[-1]))
    kernel = cast_weight(kernel, x.dtype, casts, training)
    bias = cast_weight(bias, x.dtype, casts, training)
    x = tf.nn.bias_add(tf.matmul(x, kernel), bias)
    if activation is not None:
        x = activation(x)
    # (batch * seq, out) -> (batch, seq, out)
    return ops.reshape(x, (*leading, kernel.shape[-1]))
