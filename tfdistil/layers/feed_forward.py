"""Position-wise feed-forward network."""
import keras
from keras import ops

from tfdistil.layers.projection import clone_initializer, project


def gelu_exact(x):
    """BERT's GELU: x * Phi(x) with the erf form, not the tanh approximation."""
    return ops.gelu(x, approximate=False)


@keras.saving.register_keras_serializable(package="tfdistil")
class FeedForwardNetwork(keras.layers.Layer):
    """Dense(intermediate_dim, activation) -> Dense(input width) -> dropout.

    Args:
        intermediate_dim: width of the inner layer.
        activation: "gelu" (exact erf GELU, as BERT), "gelu_approximate", "relu", or any
            Keras activation name.
        dropout: dropout rate on the output.

    Attributes:
        weight_casts: a `WeightCasts` whose compute-dtype copies of the two Dense layers' weights
            inference calls read, or None (the default: weights cast at every call). Set by
            `with casts:`; read when a call is traced.

    Call args:
        inputs: float tensor (batch, seq, hidden_dim); returns the same shape.
    """

    def __init__(
        self,
        intermediate_dim,
        activation="gelu",
        dropout=0.0,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_dim = intermediate_dim
        self.activation = activation
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.weight_casts = None

    def _activation_fn(self):
        if self.activation == "gelu":
            return gelu_exact
        if self.activation == "gelu_approximate":
            return lambda x: ops.gelu(x, approximate=True)
        return keras.activations.get(self.activation)

    def build(self, inputs_shape):
        hidden_dim = inputs_shape[-1]
        common = dict(bias_initializer=self.bias_initializer, dtype=self.dtype_policy)
        self.intermediate_dense = keras.layers.Dense(
            self.intermediate_dim, activation=self._activation_fn(), name="intermediate_dense",
            kernel_initializer=clone_initializer(self.kernel_initializer), **common
        )
        self.intermediate_dense.build(inputs_shape)
        self.output_dense = keras.layers.Dense(
            hidden_dim, name="output_dense", kernel_initializer=clone_initializer(self.kernel_initializer), **common
        )
        self.output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.built = True

    def call(self, inputs, training=None):
        # The Dense layers hold the weights (their names are the checkpoint mapping's);
        # `project` runs them as fusable 2-D MatMul + BiasAdd (+ activation).
        inner, outer = self.intermediate_dense, self.output_dense
        casts = self.weight_casts
        x = project(inputs, inner.kernel, inner.bias, inner.activation, casts=casts, training=training)
        x = project(x, outer.kernel, outer.bias, casts=casts, training=training)
        return self.dropout_layer(x, training=training)

    def projection_weights(self):
        """The kernels and biases a `WeightCasts` may hold compute-dtype copies of."""
        return [w for d in (self.intermediate_dense, self.output_dense) for w in (d.kernel, d.bias) if w is not None]

    def compute_output_shape(self, inputs_shape):
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            intermediate_dim=self.intermediate_dim,
            activation=self.activation,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
        )
        return config
