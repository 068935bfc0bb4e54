"""SavedModel export for TF Serving: raw text in, predictions out, tokenizer inside.

`export_saved_model(model, tokenizer, path)` writes TF Serving's layout::

    path/                       the model's folder (e.g. saved_models/sentiment)
      1/                        one integer folder per version, never overwritten
        saved_model.pb          signatures (below); the WordPiece vocabulary is a
        variables/              constant inside the graph (no file outside is read)
        assets.extra/tf_serving_warmup_requests
        README.md               model card

Each concern has its module: `versions` (the version folder, written whole or not at all),
`signatures` (one serving module per task kind, with its signatures), `warmup` and `model_card`.

A model under a mixed policy (`mixed_bfloat16`, `mixed_float16`) is saved with its projection
kernels and biases in the compute dtype (`tfdistil.layers.WeightCasts`): the values every call
would cast them to, so the outputs are the same, the projections take half the space and no
request pays for casting them. The model card says so.

The graph uses only TensorFlow and tensorflow-text ops (no `PyFunc`): TF Serving,
which links tensorflow-text, serves it as is; a Python client must
`import tensorflow_text` before `tf.saved_model.load`.

Signatures: `serving_default` on raw strings, `logits` on token ids and `tokenize`
(`tfdistil.export.signatures` describes each task's outputs).

REST (TF Serving's `POST /v1/models/<name>:predict`, row format)
------------------------------------------------------------------

Request and response of `serving_default` (`REST_EXAMPLES` holds these as data)::

    TextClassifier   {"instances": [{"text": "a good film"}, {"text": "dull"}]}
                  -> {"predictions": [{"probabilities": [0.1, 0.9], "class_ids": 1,
                                       "class_names": "positive"}, ...]}
    (pair=True)      {"instances": [{"text": "a man sleeps", "text_pair": "a person rests"}]}
    TextRegressor    {"instances": [{"text": "a man plays", "text_pair": "a man plays music"}]}  (pair=True)
                  -> {"predictions": [{"score": 4.6}]}
    TokenClassifier  {"instances": [{"text": "EU rejects German call"}]}
                  -> {"predictions": [{"words": ["EU", "rejects", "German", "call"],
                                       "tags": ["B-ORG", "O", "B-MISC", "O"],
                                       "tag_ids": [3, 0, 7, 0], "num_words": 4}]}
    SpanQA           {"instances": [{"question": "who?", "context": "Tom went home"}]}
                  -> {"predictions": [{"answer": "Tom", "score": 7.2, "start_char": 0,
                                       "end_char": 3}]}

Another signature: `POST /v1/models/<name>:predict` with `"signature_name": "logits"`.
"""
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfdistil.export.model_card import write_model_card
from tfdistil.export.signatures import DEFAULT_MAX_ANSWER_LENGTH, REST_EXAMPLES, serving_module_class
from tfdistil.export.versions import choose_version, new_version
from tfdistil.export.warmup import WARMUP_FILE, WARMUP_TEXTS, write_warmup
from tfdistil.layers.layer_norm import xla_layer_norm
from tfdistil.text.wordpiece import WordPieceTokenizer

__all__ = ["DEFAULT_MAX_ANSWER_LENGTH", "REST_EXAMPLES", "WARMUP_FILE", "export_saved_model", "looks_untrained"]


def looks_untrained(model):
    """True when every bias and LayerNorm beta is exactly 0 and every LayerNorm gamma exactly
    1, as Keras initialises them: any training step or loaded checkpoint moves them."""
    for variable in model.weights:
        name = variable.path.rsplit("/", 1)[-1]
        if name.endswith("gamma"):
            initial = 1.0
        elif name.endswith("beta") or name.endswith("bias"):
            initial = 0.0
        else:
            continue
        if np.any(np.asarray(variable) != initial):
            return False
    return True


def export_saved_model(
    model,
    tokenizer,
    path,
    label_names=None,
    version=None,
    model_card=None,
    pair=False,
    max_answer_length=DEFAULT_MAX_ANSWER_LENGTH,
    allow_untrained=False,
    cast_weights=True,
):
    """Export a task model and its tokenizer as one TF Serving model version.

    Args:
        model: a tfdistil `TextClassifier`, `TextRegressor`, `TokenClassifier`, `SpanQA` or
            `TextEmbedder` (`embedding`, float32 (batch, hidden)).
        tokenizer: the `tfdistil.text.WordPieceTokenizer` the model was trained with;
            its vocabulary and settings are baked into the graph.
        path: the model's folder (TF Serving's `model_base_path`, e.g.
            `saved_models/sentiment`); created if missing. It may hold only integer
            version folders.
        label_names: for classifiers, the name of each class (default "LABEL_0", ...).
        version: integer version to write; `None` takes the next one after the largest
            present (1 in an empty folder). An existing version is never overwritten.
        model_card: optional dict of extra facts for the card (e.g.
            `{"metrics": {"accuracy": 0.91}, "dataset": "sst2"}`).
        pair: TextClassifier and TextRegressor: `serving_default` also takes `text_pair`.
        max_answer_length: SpanQA only: longest answer span in tokens.
        allow_untrained: export a model whose biases and LayerNorm parameters are all
            still at their initial values (zeros and ones): one that was never trained
            nor loaded from a checkpoint. Refused by default: serving it is a mistake.
        cast_weights: under a mixed policy, store the projection kernels and biases in the
            compute dtype (module docstring); False stores them in float32, as the model holds
            them (the outputs are the same either way).

    Returns:
        The version folder, as a `Path`.

    Raises:
        ValueError: a model that is not a tfdistil task model, a tokenizer that is not a
            `WordPieceTokenizer`, a `path` that is not a TF Serving model folder, an
            existing `version`, `label_names` of the wrong length, or an untrained model.
            Nothing is written.
    """
    serving_module = serving_module_class(model)
    if not allow_untrained and looks_untrained(model):
        raise ValueError(
            f"{model.name} looks untrained: every bias and LayerNorm parameter is still at its initial "
            "value, so it was never fit nor loaded from a checkpoint. Train it or load weights first "
            "(allow_untrained=True exports it anyway)."
        )
    if not isinstance(tokenizer, WordPieceTokenizer):
        raise ValueError(
            f"`tokenizer` must be a tfdistil.text.WordPieceTokenizer, got {type(tokenizer).__name__}."
        )
    backbone = model.backbone
    if tokenizer.vocabulary_size() > backbone.vocabulary_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocabulary_size()} tokens but the model embeds only "
            f"{backbone.vocabulary_size}."
        )
    if tokenizer.sequence_length > backbone.max_sequence_length:
        raise ValueError(
            f"The tokenizer's sequence_length={tokenizer.sequence_length} exceeds the model's "
            f"max_sequence_length={backbone.max_sequence_length}."
        )
    if model_card is not None and not isinstance(model_card, dict):
        raise ValueError(f"`model_card` must be a dict, got {type(model_card).__name__}.")
    label_names = serving_module.check_options(model, label_names, pair, max_answer_length)

    root = Path(path)
    version = choose_version(root, version)

    module = serving_module(model, tokenizer, label_names, pair, max_answer_length, cast_weights)
    with new_version(root, version) as staging:
        # Traced without the XLA LayerNorm path: TF Serving and TFLite need not have XLA.
        with xla_layer_norm(model, False), module.weight_casts:
            tf.saved_model.save(module, str(staging), signatures=module.signatures())
        write_warmup(staging, module.warmup_inputs(WARMUP_TEXTS))
        write_model_card(staging, model, tokenizer, module.kind, label_names, version, model_card, pair,
                         module.weight_casts, module.rest_example)
    return root / str(version)
