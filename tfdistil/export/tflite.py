"""TFLite export of a TextClassifier or TextRegressor: token ids in, logits out, tokenizer outside.

`export_tflite(model, path, quantize=..., sequence_length=...)` writes one `.tflite`
flatbuffer whose single signature ("serving_default") is::

    inputs:  token_ids, segment_ids, padding_mask: int32 (batch, sequence_length)
    outputs: logits: float32 (batch, num_classes); a TextRegressor's scores, (batch, 1)

Why the tokenizer stays outside
-------------------------------
The WordPiece tokenizer is built on tensorflow-text ops (regex split, normalize,
wordpiece lookup, ragged tensors). The TFLite runtime has none of them as builtin
ops: a flatbuffer holding them needs the Select-TF-ops ("Flex") delegate or custom op
kernels registered in every client, which are large and absent from the default
Android/iOS/`ai-edge-litert` runtimes. Keeping tokenization on the client (Python:
`tfdistil.text.WordPieceTokenizer`, or any WordPiece implementation reading the same
vocab.txt) keeps the flatbuffer builtin-only and portable. The converter is restricted
to `TFLITE_BUILTINS`, so a model that would need a Flex op fails to convert instead of
silently producing a non-portable file.

Why a fixed sequence length
---------------------------
The sequence axis is fixed at `sequence_length` (pad shorter inputs with `[PAD]` and
padding_mask 0, as the tokenizer does with `pad_to_sequence_length=True`); the batch
axis is dynamic (`interpreter.resize_tensor_input` then `allocate_tensors`). A fixed
sequence length lets the converter fold the position-embedding slice and all reshapes
to static shapes, which every TFLite delegate (GPU, NNAPI, XNNPACK) handles; dynamic
sequence lengths would keep Shape/StridedSlice chains in the graph that several
delegates reject.

Quantization
------------
- "float32": no quantization; logits match Keras to ~1e-5.
- "float16": weights stored as float16 (`target_spec.supported_types=[tf.float16]`),
  dequantized to float32 at load on CPU; file about half the size.
- "int8": dynamic-range quantization (`optimizations=[tf.lite.Optimize.DEFAULT]`, no
  representative dataset): weights int8, activations quantized on the fly; file about a
  quarter of float32. No calibration data needed.

Runtime: `tf.lite.Interpreter` from TensorFlow (used by the tests) runs these files; a
client without TensorFlow installs the standalone `ai-edge-litert` package instead
(`from ai_edge_litert.interpreter import Interpreter`, same API; not a dependency here).
"""
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import keras
import tensorflow as tf

from tfdistil.export.tracking import Unwrapped, tf_variable
from tfdistil.models.tasks import TextClassifier, TextRegressor

QUANTIZE_MODES = ("float32", "float16", "int8")
INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


def export_tflite(model, path, quantize="float32", sequence_length=128):
    """Convert a TextClassifier or TextRegressor to a builtin-ops-only `.tflite` file.

    Args:
        model: a built tfdistil `TextClassifier` or `TextRegressor` (BERT or DistilBERT backbone).
        path: the `.tflite` file to write (parent folders are created). Written to a
            temporary file and renamed into place, so a failed export leaves nothing.
        quantize: "float32" (none), "float16" (float16 weights) or "int8"
            (dynamic-range int8 weights).
        sequence_length: the fixed length of the token axis of every input; at most the
            backbone's `max_sequence_length`.

    Returns:
        The written file, as a `Path`.

    Raises:
        ValueError: not a built TextClassifier or TextRegressor, an unknown `quantize`, or a
            bad `sequence_length`. Nothing is written.
    """
    if not isinstance(model, (TextClassifier, TextRegressor)):
        raise ValueError(
            f"export_tflite exports a tfdistil TextClassifier or TextRegressor; got {type(model).__name__} "
            f"{getattr(model, 'name', model)!r}."
        )
    if not model.built:
        raise ValueError(f"The {type(model).__name__} {model.name!r} is not built.")
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"`quantize` must be one of {list(QUANTIZE_MODES)}, got {quantize!r}.")
    max_length = model.backbone.max_sequence_length
    if (
        not isinstance(sequence_length, int)
        or isinstance(sequence_length, bool)
        or not 2 <= sequence_length <= max_length
    ):
        raise ValueError(
            f"`sequence_length` must be an int between 2 and the model's max_sequence_length "
            f"{max_length}, got {sequence_length!r}."
        )

    content = convert_tflite(model, quantize, sequence_length)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _float32_config(config):
    """`config` with every dtype policy replaced by float32."""
    if isinstance(config, dict):
        return {k: ("float32" if k == "dtype" and v is not None else _float32_config(v)) for k, v in config.items()}
    if isinstance(config, list):
        return [_float32_config(v) for v in config]
    return config


def float32_copy(model):
    """`model` itself when it computes in float32, else the same model rebuilt under float32 with
    its weights. TFLite has no bfloat16 kernels, and a model trained under a mixed policy keeps
    float32 variables, so the copy loses nothing (it computes in float32, as the TFLite float32
    export should)."""
    # Keras has no public walk over every sublayer (`_flatten_layers` visits each once).
    policies = {layer.dtype_policy.name for layer in model._flatten_layers()}
    if policies == {"float32"}:
        return model
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        copy = model.__class__.from_config(_float32_config(model.get_config()))
    finally:
        keras.config.set_dtype_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def convert_tflite(model, quantize="float32", sequence_length=128):
    """The flatbuffer bytes of `export_tflite` (no checks, nothing written). A model under a
    mixed precision policy is converted from its float32 copy (`float32_copy`)."""
    model = float32_copy(model)
    specs = [tf.TensorSpec([None, sequence_length], tf.int32, name=name) for name in INPUT_NAMES]

    @tf.function(input_signature=specs)
    def serving_default(token_ids, segment_ids, padding_mask):
        logits = model(
            {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
            training=False,
        )
        return {"logits": tf.cast(logits, tf.float32)}

    # Through a SavedModel rather than `from_concrete_functions`: only that path keeps the
    # signature's names (inputs token_ids/..., output "logits" instead of "output_0") and
    # freezes Keras 3 variables into constants (from a concrete function they stay
    # resource variables, uninitialised in the interpreter). The module tracks the model's
    # tf.Variables as a list, not the Keras model (`tfdistil.export.tracking`).
    module = tf.Module()
    module._unwrapped = Unwrapped(model=model)
    module.model_variables = [tf_variable(v) for v in model.variables]
    module.serving_default = serving_default
    staging = tempfile.mkdtemp(prefix="tfdistil-tflite-")
    try:
        tf.saved_model.save(module, staging, signatures={"serving_default": serving_default})
        converter = tf.lite.TFLiteConverter.from_saved_model(staging)
        # Builtins only: conversion fails rather than emit Flex (Select TF) ops.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _interpreter(**kwargs):
    # tf.lite.Interpreter still works in TF 2.21 but warns on every construction that
    # ai-edge-litert replaces it; the module docstring says so once.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return tf.lite.Interpreter(**kwargs)


def tflite_op_names(model_content):
    """Sorted set of the operator names in a flatbuffer (e.g. "FULLY_CONNECTED";
    a Select-TF op shows as "FlexXxx" or "DELEGATE"/"CUSTOM")."""
    interpreter = _interpreter(model_content=model_content)
    # The LiteRT interpreter lists a model's operators only through `_get_ops_details`.
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


class TFLiteClassifier:
    """Runs an exported `.tflite` TextClassifier on tokenized numpy inputs.

    Args:
        path_or_content: the `.tflite` file, or its bytes.
        num_threads: interpreter threads (None: TFLite's default).
    """

    def __init__(self, path_or_content, num_threads=None):
        if isinstance(path_or_content, (bytes, bytearray)):
            kwargs = {"model_content": bytes(path_or_content)}
        else:
            kwargs = {"model_path": str(path_or_content)}
        self.interpreter = _interpreter(num_threads=num_threads, **kwargs)
        self.runner = self.interpreter.get_signature_runner("serving_default")
        details = self.runner.get_input_details()
        self.sequence_length = int(details["token_ids"]["shape_signature"][-1])

    def __call__(self, inputs):
        """Logits (batch, num_classes) float32 of a dict of int (batch, sequence_length) arrays.
        A new batch size resizes the inputs (the batch axis is dynamic)."""
        arrays = {name: np.asarray(inputs[name], dtype=np.int32) for name in INPUT_NAMES}
        length = arrays["token_ids"].shape[-1]
        if length != self.sequence_length:
            raise ValueError(
                f"The TFLite model takes sequence_length={self.sequence_length} tokens; got {length}. "
                "Pad with the tokenizer's pad_to_sequence_length=True."
            )
        return self.runner(**arrays)["logits"].copy()
