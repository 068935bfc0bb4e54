"""Change one attribute of every layer of a kind under a model, for a block of code.

Layers read these attributes (`TransformerEncoderBlock.skip_padding`, `LayerNorm.xla`, the
projections' `weight_casts`) when a call is traced or run eagerly, so a `tf.function` traced
inside the block keeps the choice after it."""
import contextlib

import keras


def layers_of_type(model, kind):
    """Every layer of type `kind` under `model` (itself included), each once, in model order."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"Expected a Keras layer or model whose layers to set, got {model!r}: the settings take the "
            "model first, e.g. `skip_padding(model, 'never')`, `xla_layer_norm(model, False)`."
        )
    # Private Keras API: Keras 3 has no public recursive walk over sublayers (`Model.layers`
    # lists the top level only; `tf.Module.submodules` does not see Keras 3 layers).
    return [layer for layer in model._flatten_layers(include_self=True) if isinstance(layer, kind)]


@contextlib.contextmanager
def overriding(layers, name, value):
    """Sets `layer.<name> = value` on each of `layers` for the block, then restores each value."""
    before = [(layer, getattr(layer, name)) for layer in layers]
    for layer, _ in before:
        setattr(layer, name, value)
    try:
        yield
    finally:
        for layer, previous in reversed(before):
            setattr(layer, name, previous)
