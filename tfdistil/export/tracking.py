"""Saving a Keras 3 model inside a `tf.Module`: its tf.Variables tracked as a list, the model not.

Saved through the Keras model object, Keras 3 variables come out twice in the graph, and
TF1-style loaders (TF Serving, `saved_model_cli run`) restore the copy the functions do not
read ("Could not find variable ..."); `keras.export.ExportArchive` tracks a list for the same
reason. Used by the SavedModel and the TFLite exports.
"""
import tensorflow as tf


class Unwrapped:
    """Holds objects (the model, the tokenizer, ...) out of tf.Module's tracking: a plain
    Python object, which `tf.saved_model.save` does not walk into."""

    def __init__(self, **objects):
        vars(self).update(objects)


def tf_variable(variable):
    """The `tf.Variable` behind a Keras 3 variable (TensorFlow backend)."""
    # Keras 3 has no public accessor for a backend variable's tf.Variable.
    value = getattr(variable, "_value", None)
    if not isinstance(value, tf.Variable):
        raise ValueError(f"Variable {variable.path} is not backed by a tf.Variable; export needs the TF backend.")
    return value
