"""Projection weights cast to the compute dtype once, not at every call.

Under a mixed policy Keras keeps every weight in float32 and casts it to the compute dtype where
a layer reads it, so every inference call casts all the projection weights again. `WeightCasts`
holds a copy of each projection kernel and bias in the compute dtype (exactly what the per-call
cast computes, so outputs do not change), and the layers whose `weight_casts` attribute points
at it read the copies in inference calls; training calls (`training=True`) read the float32
weights, so gradients reach them. The copies are a snapshot: after the weights change, call
`refresh()`. Exports of mixed-policy models store the copies in place of the float32 originals.
"""
from keras import ops

from tfdistil.layers.attention import MultiHeadSelfAttention
from tfdistil.layers.feed_forward import FeedForwardNetwork
from tfdistil.layers.settings import layers_of_type, overriding


class WeightCasts:
    """The projection kernels and biases of `model`'s `MultiHeadSelfAttention` and
    `FeedForwardNetwork` layers, cast once to each layer's compute dtype where it differs from
    the variable dtype (mixed policies; empty under float32, or with `enabled=False`).

    Use:
        casts = WeightCasts(model)
        with casts:            # sets the layers' `weight_casts`; trace the inference function here
            infer = tf.function(lambda x: model(x, training=False))
            infer.get_concrete_function(inputs)
        ...
        casts.refresh()        # after the model's weights change

    A function traced inside `with casts:` reads the copies for good; one traced outside casts per
    call. The block sets an attribute of the model's layers (not a per-thread setting): a function
    traced in another thread meanwhile sees it too.

    Attributes:
        variables: the copies (`tf.Variable`s, not trainable), in model order.
        originals: the float32 Keras variables they copy, in the same order.
    """

    def __init__(self, model, enabled=True):
        import tensorflow as tf

        self._copies, self._scopes, self._layers = {}, [], []
        self.originals, self.variables = [], []
        # Every layer under the model once (a task's backbone and its first-token model share theirs).
        owners = layers_of_type(model, (MultiHeadSelfAttention, FeedForwardNetwork)) if enabled else ()
        for layer in owners:
            dtype = layer.compute_dtype
            copied = False
            for weight in layer.projection_weights():
                if weight.dtype == dtype or id(weight) in self._copies:
                    continue
                copy = tf.Variable(tf.cast(weight.value, dtype), trainable=False,
                                   name=weight.path.replace("/", "_") + "_" + dtype)
                self._copies[id(weight)] = copy
                self.originals.append(weight)
                self.variables.append(copy)
                copied = True
            if copied:
                self._layers.append(layer)

    def __len__(self):
        return len(self.variables)

    def copy_of(self, variable):
        """The copy of a Keras variable, or None."""
        return self._copies.get(id(variable))

    def refresh(self):
        """Cast the current float32 values again (after training or loading weights)."""
        for weight, copy in zip(self.originals, self.variables):
            copy.assign(ops.cast(weight.value, copy.dtype))

    def __enter__(self):
        scope = overriding(self._layers, "weight_casts", self)
        scope.__enter__()
        self._scopes.append(scope)  # a stack: the same object may be entered again inside
        return self

    def __exit__(self, *exc):
        return self._scopes.pop().__exit__(*exc)
