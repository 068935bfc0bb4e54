"""Projection weights cast to the compute dtype once, not at every call.

Under a mixed policy (`mixed_bfloat16`, `mixed_float16`) Keras keeps every weight in float32 and
casts it to the compute dtype where a layer reads it, so each inference call of bert_base casts
its 85 M projection parameters again: 340 MB read and 170 MB written, ~17 ms of a 254 ms
bert_base call at batch 8 x 128 on this project's CPU (and a larger share of a batch-1 call).
`WeightCasts` makes those casts once: it holds a copy of each projection kernel and bias in the
compute dtype, and calls traced (or run eagerly) inside `with casts:` read the copies. The copies are exactly
what the per-call cast computes (the same rounding of the same float32 values), so outputs are
unchanged, bit for bit.

Only inference reads the copies: calls with `training=True` (a train step) read the float32
weights as before, so gradients reach them. The copies are a snapshot: after the model's
weights change (training, loading a checkpoint), call `refresh()` before the next inference
call, or a function traced with them computes with the old weights. Exported SavedModels of
mixed-policy models store the copies in place of the float32 originals
(`tfdistil.export.export_saved_model`).
"""
from keras import ops

from tfdistil.layers.switches import TraceSetting

_ACTIVE = TraceSetting(default=None)


class WeightCasts:
    """The projection kernels and biases of `model`'s `MultiHeadSelfAttention` and
    `FeedForwardNetwork` layers, cast once to each layer's compute dtype where it differs from
    the variable dtype (mixed policies; empty under float32, or with `enabled=False`).

    Use:
        casts = WeightCasts(model)
        with casts:            # trace (or first call) the inference function here
            infer = tf.function(lambda x: model(x, training=False))
            infer.get_concrete_function(inputs)
        ...
        casts.refresh()        # after the model's weights change

    Attributes:
        variables: the copies (`tf.Variable`s, not trainable), in model order.
        originals: the float32 Keras variables they copy, in the same order.
    """

    def __init__(self, model, enabled=True):
        import tensorflow as tf

        from tfdistil.layers.attention import MultiHeadSelfAttention
        from tfdistil.layers.feed_forward import FeedForwardNetwork

        self._copies, self._scopes = {}, []
        self.originals, self.variables = [], []
        # Every layer under the model once (Keras skips layers met twice: a task's backbone and
        # its first-token model share theirs).
        for layer in model._flatten_layers(include_self=False) if enabled else ():
            if isinstance(layer, MultiHeadSelfAttention):
                weights = [layer.qkv_kernel, layer.qkv_bias, layer.output_kernel, layer.output_bias]
            elif isinstance(layer, FeedForwardNetwork):
                dense = (layer.intermediate_dense, layer.output_dense)
                weights = [w for d in dense for w in (d.kernel, d.bias) if w is not None]
            else:
                continue
            dtype = layer.compute_dtype
            for weight in weights:
                if weight.dtype == dtype or id(weight) in self._copies:
                    continue
                copy = tf.Variable(tf.cast(weight.value, dtype), trainable=False,
                                   name=weight.path.replace("/", "_") + "_" + dtype)
                self._copies[id(weight)] = copy
                self.originals.append(weight)
                self.variables.append(copy)

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
        scope = _ACTIVE.set(self)
        scope.__enter__()
        self._scopes.append(scope)  # a stack: the same object may be entered again inside
        return self

    def __exit__(self, *exc):
        return self._scopes.pop().__exit__(*exc)


def compute_weight(weight, dtype, training=None):
    """`weight` as `dtype`: the `WeightCasts` copy in scope for inference calls, else a cast."""
    casts = _ACTIVE.value()
    if casts is not None and not training:
        copy = casts.copy_of(weight)
        if copy is not None and copy.dtype == dtype:
            return copy
    return ops.cast(weight, dtype)
