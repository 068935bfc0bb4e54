"""SavedModel export for TF Serving: raw text in, predictions out, tokenizer inside.

`export_saved_model(model, tokenizer, path)` writes TF Serving's layout::

    path/                       the model's folder (e.g. saved_models/sentiment)
      1/                        one integer folder per version, never overwritten
        saved_model.pb          signatures (below); the WordPiece vocabulary is a
        variables/              constant inside the graph (no file outside is read)
        assets.extra/tf_serving_warmup_requests
        README.md               model card

The version is written to a temporary folder beside `path` and moved into place
with one `os.rename`, so TF Serving never sees a half-written version and a failed
export leaves nothing behind.

A model under a mixed policy (`mixed_bfloat16`, `mixed_float16`) is saved with its projection
kernels and biases in the compute dtype (`tfdistil.layers.WeightCasts`): the values every call
would cast them to, so the outputs are the same, the projections take half the space, and no
request pays for casting them (a bert_base classifier: 274 MB instead of 444; served 1.17x
faster at batch 1, 1.09x at batch 8, `benchmarks/bench_weight_casts.py`). The model card says so.

The graph uses only TensorFlow and tensorflow-text ops (no `PyFunc`): TF Serving,
which links tensorflow-text, serves it as is; a Python client must
`import tensorflow_text` before `tf.saved_model.load`.

Signatures
----------

TextClassifier (`pair=False`):
    serving_default(text: string (batch,)) ->
        probabilities: float32 (batch, num_classes), softmax of the logits
        class_ids:     int64 (batch,), argmax
        class_names:   string (batch,), `label_names[class_ids]`
    With `pair=True` it also takes `text_pair: string (batch,)` (second segment).

TokenClassifier:
    serving_default(text: string (batch,), whitespace-separated words) ->
        words:     string (batch, max_words), the input split on whitespace, padded with ""
        tags:      string (batch, max_words), the tag of each word, padded with ""
        tag_ids:   int32 (batch, max_words), padded with -1
        num_words: int32 (batch,), number of words of each text
    A signature output cannot be ragged, so per-word results are dense and padded to
    the longest text of the batch; `num_words` says how many entries of a row are
    real. The tag of a word is the prediction at its first WordPiece (as in BERT's
    NER recipe). A word cut off by truncation to `sequence_length`, or a word that
    has no WordPiece at all (only control characters), gets tag "" and id -1.

SpanQA:
    serving_default(question: string (batch,), context: string (batch,)) ->
        start_index, end_index: int32 (batch,), token positions in the packed
            `[CLS] question [SEP] context [SEP]` sequence (inclusive span)
        score:  float32 (batch,), start_logit + end_logit of the span
        answer: string (batch,), the span's WordPieces detokenized (normalized text,
            i.e. lowercased for an uncased tokenizer, not the original characters)
    The best span lies in the context, with start <= end < start + `max_answer_length`.

Every task also has:
    logits(token_ids, segment_ids, padding_mask: int32 (batch, seq)) -> logits
        (SpanQA: start_logits, end_logits), the model on already-tokenized inputs.
        `segment_ids` is accepted (and ignored) by DistilBERT models too, so that
        clients do not depend on the architecture.
    tokenize(text [, text_pair]) -> token_ids, segment_ids, padding_mask: int32
        (batch, sequence_length), the in-graph tokenizer alone (TokenClassifier: the
        word-by-word packing that its serving_default feeds the model).

REST (TF Serving's `POST /v1/models/<name>:predict`, row format)
------------------------------------------------------------------

Request and response of `serving_default` (`REST_EXAMPLES` holds these as data)::

    TextClassifier   {"instances": [{"text": "a good film"}, {"text": "dull"}]}
                  -> {"predictions": [{"probabilities": [0.1, 0.9], "class_ids": 1,
                                       "class_names": "positive"}, ...]}
    (pair=True)      {"instances": [{"text": "a man sleeps", "text_pair": "a person rests"}]}
    TokenClassifier  {"instances": [{"text": "EU rejects German call"}]}
                  -> {"predictions": [{"words": ["EU", "rejects", "German", "call"],
                                       "tags": ["B-ORG", "O", "B-MISC", "O"],
                                       "tag_ids": [3, 0, 7, 0], "num_words": 4}]}
    SpanQA           {"instances": [{"question": "who?", "context": "tom went home"}]}
                  -> {"predictions": [{"start_index": 4, "end_index": 4, "score": 7.2,
                                       "answer": "tom"}]}

Another signature: `POST /v1/models/<name>:predict` with `"signature_name": "logits"`.
"""
import datetime
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfdistil.layers.layer_norm import xla_layer_norm
from tfdistil.layers.weight_casts import WeightCasts
from tfdistil.models.tasks import SpanQA, Task, TextClassifier, TokenClassifier
from tfdistil.text.wordpiece import WordPieceTokenizer

WARMUP_FILE = "tf_serving_warmup_requests"
DEFAULT_MAX_ANSWER_LENGTH = 30

REST_EXAMPLES = {
    "text_classification": {
        "request": {"instances": [{"text": "a good film"}, {"text": "dull"}]},
        "response": {
            "predictions": [
                {"probabilities": [0.1, 0.9], "class_ids": 1, "class_names": "positive"},
                {"probabilities": [0.8, 0.2], "class_ids": 0, "class_names": "negative"},
            ]
        },
    },
    "text_pair_classification": {
        "request": {"instances": [{"text": "a man sleeps", "text_pair": "a person rests"}]},
        "response": {
            "predictions": [
                {"probabilities": [0.9, 0.1], "class_ids": 0, "class_names": "entailment"}
            ]
        },
    },
    "token_classification": {
        "request": {"instances": [{"text": "EU rejects German call"}]},
        "response": {
            "predictions": [
                {
                    "words": ["EU", "rejects", "German", "call"],
                    "tags": ["B-ORG", "O", "B-MISC", "O"],
                    "tag_ids": [3, 0, 7, 0],
                    "num_words": 4,
                }
            ]
        },
    },
    "question_answering": {
        "request": {"instances": [{"question": "who went home?", "context": "tom went home"}]},
        "response": {
            "predictions": [{"start_index": 6, "end_index": 6, "score": 7.2, "answer": "tom"}]
        },
    },
}

# The batch written as the TF Serving warm-up request (empty and non-ASCII text included).
_WARMUP_TEXTS = ["a good film", "", "café naïve 東京"]

_WHITESPACE = r"[\s\p{Z}]+"


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
        model: a tfdistil `TextClassifier`, `TokenClassifier` or `SpanQA`.
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
        pair: TextClassifier only: `serving_default` also takes `text_pair`.
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
    task = _task_of(model)
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
    if pair and task != "text_classification":
        raise ValueError(f"`pair=True` is for a TextClassifier; got a {type(model).__name__}.")
    label_names = _check_label_names(model, task, label_names)
    if model_card is not None and not isinstance(model_card, dict):
        raise ValueError(f"`model_card` must be a dict, got {type(model_card).__name__}.")
    if task == "question_answering" and (
        not isinstance(max_answer_length, int) or max_answer_length < 1
    ):
        raise ValueError(f"`max_answer_length` must be an int >= 1, got {max_answer_length!r}.")

    root = Path(path)
    version = _choose_version(root, version)

    module = _ServingModule(model, tokenizer, task, label_names, pair, max_answer_length, cast_weights)
    created = _missing_ancestors(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-v{version}-", dir=root.parent))
    try:
        # Traced without the XLA LayerNorm path: TF Serving and TFLite need not have XLA.
        with xla_layer_norm(False), module.weight_casts:
            tf.saved_model.save(module, str(staging), signatures=module.signatures())
        _write_warmup(staging, module.warmup_inputs())
        _write_model_card(staging, model, tokenizer, task, label_names, version, model_card, pair, module.weight_casts)
        root.mkdir(exist_ok=True)
        final = root / str(version)
        if final.exists():  # another export took this version meanwhile
            raise ValueError(f"Version {version} already exists in {root}.")
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # folders this call made, deepest first, if still empty
            if folder.exists():
                try:
                    folder.rmdir()
                except OSError:  # not empty: someone else wrote there meanwhile
                    break
        raise
    return final


# --------------------------------------------------------------------------- checks

_TASKS = [
    (TextClassifier, "text_classification"),
    (TokenClassifier, "token_classification"),
    (SpanQA, "question_answering"),
]


def _task_of(model):
    for cls, task in _TASKS:
        if isinstance(model, cls):
            if not model.built:
                raise ValueError(f"The {type(model).__name__} {model.name!r} is not built.")
            return task
    kind = "tfdistil Task " if isinstance(model, Task) else ""
    raise ValueError(
        "export_saved_model exports a tfdistil TextClassifier, TokenClassifier or SpanQA; "
        f"got the {kind}{type(model).__name__} {getattr(model, 'name', model)!r}."
    )


def _check_label_names(model, task, label_names):
    if task == "question_answering":
        if label_names is not None:
            raise ValueError("`label_names` is for classifiers; a SpanQA model has no classes.")
        return None
    if label_names is None:
        return [f"LABEL_{i}" for i in range(model.num_classes)]
    if isinstance(label_names, (str, bytes)):
        raise ValueError(f"`label_names` must be a list of strings, got the string {label_names!r}.")
    label_names = [str(name) for name in label_names]
    if len(label_names) != model.num_classes:
        raise ValueError(
            f"`label_names` has {len(label_names)} names ({label_names}) for a model of "
            f"{model.num_classes} classes."
        )
    return label_names


def _choose_version(root, version):
    """Check that `root` is a TF Serving model folder and pick the version to write."""
    existing = []
    if root.exists():
        if not root.is_dir():
            raise ValueError(f"`path` {str(root)!r} exists and is not a folder.")
        others = []
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and re.fullmatch(r"[0-9]+", entry.name):
                existing.append(int(entry.name))
            else:
                others.append(entry.name)
        if others:
            raise ValueError(
                f"`path` {str(root)!r} is not a TF Serving model folder: besides integer "
                f"version folders it holds {others}. Pass the model's own folder "
                "(e.g. saved_models/<name>)."
            )
    if version is None:
        return max(existing, default=0) + 1
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"`version` must be a positive int or None, got {version!r}.")
    if version in existing:
        raise ValueError(
            f"Version {version} already exists in {str(root)!r}; a version is never "
            f"overwritten. Pass version=None for the next one ({max(existing) + 1})."
        )
    return version


def _missing_ancestors(root):
    """`root` and its ancestors that do not exist yet, deepest first."""
    missing = []
    folder = root.absolute()
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


# --------------------------------------------------------------------------- graph

def _string_spec(name):
    return tf.TensorSpec([None], tf.string, name=name)


def _ids_spec(name):
    return tf.TensorSpec([None, None], tf.int32, name=name)


class _Unwrapped:
    """Holds objects without tf.Module tracking them (a plain Python object)."""

    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer


class _ServingModule(tf.Module):
    """The model, the tokenizer and the label names, with one tf.function per signature."""

    def __init__(self, model, tokenizer, task, label_names, pair, max_answer_length, cast_weights):
        super().__init__(name="tfdistil_serving")
        # The model is kept out of tf.Module's tracking, its variables are tracked as a
        # list instead (as keras.export.ExportArchive does). Saved through the Keras model
        # object, Keras 3 variables come out twice in the graph, and TF1-style loaders
        # (TF Serving, `saved_model_cli run`) restore the copy the functions do not read:
        # "Could not find variable ...".
        self._unwrapped = _Unwrapped(model, tokenizer)
        # Under a mixed policy the projections' compute-dtype copies stand in for their float32
        # originals (which the traced functions then do not read).
        casts = WeightCasts(model, enabled=cast_weights)
        self._unwrapped.weight_casts = casts
        self.model_variables = [
            _tf_variable(v) if (copy := casts.copy_of(v)) is None else copy for v in model.variables
        ]
        self._task = task
        self._pair = pair
        self._max_answer_length = max_answer_length
        self._label_names = label_names

    @property
    def model(self):
        return self._unwrapped.model

    @property
    def tokenizer(self):
        return self._unwrapped.tokenizer

    @property
    def weight_casts(self):
        return self._unwrapped.weight_casts

    def _labels(self):
        return tf.constant(self._label_names, tf.string)

    def _run(self, inputs):
        return self.model(
            {
                "token_ids": inputs["token_ids"],
                "segment_ids": inputs["segment_ids"],
                "padding_mask": inputs["padding_mask"],
            },
            training=False,
        )

    # ---------------------------------------------------------------- text classification

    def _classify(self, inputs):
        logits = self._run(inputs)  # (batch, classes)
        class_ids = tf.argmax(logits, axis=-1)  # (batch,) int64
        return {
            "probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1),
            "class_ids": class_ids,
            "class_names": tf.gather(self._labels(), class_ids),
        }

    # ---------------------------------------------------------------- token classification

    def _pack_words(self, text):
        """Whitespace words, their WordPieces packed as `[CLS] pieces [SEP]`, and where
        each word's first piece sits. Returns (words, inputs, word_row, position, tagged)."""
        tokenizer = self.tokenizer
        length = tokenizer.sequence_length
        words = tf_text.regex_split(text, _WHITESPACE)  # (batch, words)
        pieces = tokenizer.tokenize_words(words)  # (batch, words, pieces)
        word_pieces = pieces.values  # (total_words, pieces)
        # (batch, pieces): the words' pieces back to back
        row_splits = tf.gather(word_pieces.row_splits, pieces.row_splits)
        row_pieces = tf.RaggedTensor.from_row_splits(word_pieces.values, row_splits, validate=False)
        keep = tf.minimum(row_pieces.row_lengths(), length - 2)  # (batch,)

        # Pack [CLS] pieces [SEP] [PAD]...
        j = tf.range(length, dtype=tf.int64)[tf.newaxis, :] + tf.zeros_like(keep)[:, tf.newaxis]
        body = row_pieces.to_tensor(shape=[None, length - 2])  # (batch, length - 2)
        token_ids = tf.gather(body, tf.clip_by_value(j - 1, 0, length - 3), batch_dims=1)
        sep = tf.expand_dims(keep + 1, 1)  # (batch, 1)
        token_ids = tf.where(tf.equal(j, sep), tokenizer.sep_token_id, token_ids)
        token_ids = tf.where(tf.equal(j, 0), tokenizer.cls_token_id, token_ids)
        padding_mask = j <= sep
        token_ids = tf.where(padding_mask, token_ids, tokenizer.pad_token_id)
        inputs = {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": tf.cast(padding_mask, tf.int32),
        }
        # Position of each word's first piece in the packed row (+1 for [CLS]); a word is
        # tagged if it has pieces and its first one survived truncation.
        word_row = words.value_rowids()  # (total_words,)
        first_piece = word_pieces.row_splits[:-1] - tf.gather(row_splits, word_row)
        position = first_piece + 1
        tagged = (word_pieces.row_lengths() > 0) & (position < tf.gather(keep, word_row) + 1)
        return words, inputs, word_row, position, tagged

    def _tag_words(self, text):
        words, inputs, word_row, position, tagged = self._pack_words(text)
        predicted = tf.argmax(self._run(inputs), axis=-1, output_type=tf.int32)  # (batch, length)
        flat_tag_ids = tf.where(
            tagged,
            tf.gather_nd(predicted, tf.stack([word_row, tf.where(tagged, position, 0)], axis=1)),
            -1,
        )  # (total_words,)
        tag_ids = words.with_flat_values(flat_tag_ids)
        flat_tags = tf.where(tagged, tf.gather(self._labels(), tf.maximum(flat_tag_ids, 0)), "")
        return {
            "words": words.to_tensor(default_value=""),
            "tags": words.with_flat_values(flat_tags).to_tensor(default_value=""),
            "tag_ids": tag_ids.to_tensor(default_value=-1),
            "num_words": tf.cast(words.row_lengths(), tf.int32),
        }

    # ---------------------------------------------------------------- span QA

    def _answer(self, question, context):
        inputs = self.tokenizer(question, context)
        outputs = self._run(inputs)
        start_logits = tf.cast(outputs["start_logits"], tf.float32)  # (batch, seq)
        end_logits = tf.cast(outputs["end_logits"], tf.float32)
        # Only context tokens (segment 1, not padding, not the final [SEP]) may answer.
        in_context = tf.equal(inputs["segment_ids"], 1) & tf.equal(inputs["padding_mask"], 1)
        in_context &= tf.not_equal(inputs["token_ids"], self.tokenizer.sep_token_id)
        seq = tf.shape(start_logits)[1]
        # (batch, seq_start, seq_end)
        scores = start_logits[:, :, tf.newaxis] + end_logits[:, tf.newaxis, :]
        start = tf.range(seq)[:, tf.newaxis]
        end = tf.range(seq)[tf.newaxis, :]
        band = (end >= start) & (end < start + self._max_answer_length)  # (seq, seq)
        allowed = band[tf.newaxis] & in_context[:, :, tf.newaxis] & in_context[:, tf.newaxis, :]
        scores = tf.where(allowed, scores, -np.inf)
        best = tf.argmax(tf.reshape(scores, [tf.shape(scores)[0], -1]), axis=-1, output_type=tf.int32)
        start_index = best // seq
        end_index = best % seq
        has_answer = tf.reduce_any(in_context, axis=1)
        score = tf.gather(tf.reshape(scores, [tf.shape(scores)[0], -1]), best, batch_dims=1)
        # Detokenize the span: pieces at start..end of each row.
        j = tf.range(seq)[tf.newaxis, :]
        in_span = (j >= start_index[:, tf.newaxis]) & (j <= end_index[:, tf.newaxis])
        in_span &= has_answer[:, tf.newaxis]
        span_ids = tf.ragged.boolean_mask(inputs["token_ids"], in_span)
        tokens = tf.gather(tf.constant(self.tokenizer.get_vocabulary()), span_ids)
        answer = tf.strings.regex_replace(
            tf.strings.reduce_join(tokens, axis=1, separator=" "), " ##", ""
        )
        return {
            "start_index": tf.where(has_answer, start_index, -1),
            "end_index": tf.where(has_answer, end_index, -1),
            "score": tf.where(has_answer, score, -np.inf),
            "answer": answer,
        }

    # ---------------------------------------------------------------- signatures

    def signatures(self):
        ids = [_ids_spec("token_ids"), _ids_spec("segment_ids"), _ids_spec("padding_mask")]

        @tf.function(input_signature=ids)
        def logits(token_ids, segment_ids, padding_mask):
            outputs = self._run(
                {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
            )
            if isinstance(outputs, dict):
                return {k: tf.cast(v, tf.float32) for k, v in outputs.items()}
            return {"logits": tf.cast(outputs, tf.float32)}

        if self._task == "text_classification" and self._pair:

            @tf.function(input_signature=[_string_spec("text"), _string_spec("text_pair")])
            def serving_default(text, text_pair):
                return self._classify(self.tokenizer(text, text_pair))

            @tf.function(input_signature=[_string_spec("text"), _string_spec("text_pair")])
            def tokenize(text, text_pair):
                return self.tokenizer(text, text_pair)

        elif self._task == "question_answering":

            @tf.function(input_signature=[_string_spec("question"), _string_spec("context")])
            def serving_default(question, context):
                return self._answer(question, context)

            @tf.function(input_signature=[_string_spec("question"), _string_spec("context")])
            def tokenize(question, context):
                return self.tokenizer(question, context)

        else:

            @tf.function(input_signature=[_string_spec("text")])
            def serving_default(text):
                if self._task == "token_classification":
                    return self._tag_words(text)
                return self._classify(self.tokenizer(text))

            @tf.function(input_signature=[_string_spec("text")])
            def tokenize(text):
                if self._task == "token_classification":
                    return self._pack_words(text)[1]  # what serving_default feeds the model
                return self.tokenizer(text)

        # Kept on the module so that tf.saved_model.save also saves them as functions.
        self.serving_default = serving_default
        self.logits = logits
        self.tokenize = tokenize
        return {"serving_default": serving_default, "logits": logits, "tokenize": tokenize}

    def warmup_inputs(self):
        """{signature input name: list of strings}, a small batch for TF Serving's warm-up."""
        texts = list(_WARMUP_TEXTS)
        if self._task == "question_answering":
            return {"question": ["what is it?"] * len(texts), "context": texts}
        if self._pair:
            return {"text": texts, "text_pair": list(reversed(texts))}
        return {"text": texts}


# --------------------------------------------------------------------------- TF Serving extras
# A PredictionLog is written by hand in protobuf's wire format (tensorflow-serving-api,
# which has the generated classes, is not a dependency). The messages used:
#   PredictionLog  { PredictLog predict_log = 6; }
#   PredictLog     { PredictRequest request = 1; }
#   PredictRequest { ModelSpec model_spec = 1; map<string, TensorProto> inputs = 2; }
#   ModelSpec      { string signature_name = 3; }
#   map entry      { string key = 1; TensorProto value = 2; }


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field_number, payload):
    return _varint((field_number << 3) | 2) + _varint(len(payload)) + payload


def prediction_log(inputs, signature_name="serving_default"):
    """Serialized `tensorflow.serving.PredictionLog` holding one PredictRequest.

    Args:
        inputs: {input name: list of Python strings} (a batch).
    """
    model_spec = _length_delimited(3, signature_name.encode("utf-8"))
    request = _length_delimited(1, model_spec)
    for name, values in inputs.items():
        tensor = tf.make_tensor_proto(
            np.array([v.encode("utf-8") for v in values], dtype=object), dtype=tf.string
        )
        entry = _length_delimited(1, name.encode("utf-8")) + _length_delimited(
            2, tensor.SerializeToString()
        )
        request += _length_delimited(2, entry)
    predict_log = _length_delimited(1, request)
    return _length_delimited(6, predict_log)


def _write_warmup(folder, inputs):
    extra = folder / "assets.extra"
    extra.mkdir()
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
        writer.write(prediction_log(inputs))


def _write_model_card(folder, model, tokenizer, task, label_names, version, model_card, pair, weight_casts):
    backbone = model.backbone
    config = backbone.get_config()
    sizes = {
        key: config[key]
        for key in (
            "vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
            "max_sequence_length",
        )
        if key in config
    }
    lines = [
        f"# {model.name} (version {version})",
        "",
        f"- Task: {task}" + (" (sentence pairs)" if pair else ""),
        f"- Model: {type(model).__name__} on a {type(backbone).__name__}",
        f"- Parameters: {model.count_params():,}",
        f"- Exported: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}"
        f" with TensorFlow {tf.__version__}, Keras {keras.__version__}",
        f"- Dtype policy: {model.dtype_policy.name}"
        + (f"; the {len(weight_casts)} projection kernels and biases are stored in "
           f"{weight_casts.variables[0].dtype.name}, the dtype every call computes them in" if len(weight_casts) else ""),
        "",
        "## Sizes",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in sizes.items()]
    if label_names is not None:
        lines += ["", "## Labels", ""]
        lines += [f"- {i}: {name}" for i, name in enumerate(label_names)]
    lines += [
        "",
        "## Tokenizer (in the graph)",
        "",
        "- WordPiece, vocabulary of "
        f"{tokenizer.vocabulary_size()} tokens (inside saved_model.pb)",
        f"- lowercase: {tokenizer.lowercase}, strip_accents: {tokenizer.strip_accents}",
        f"- sequence_length: {tokenizer.sequence_length} (longer inputs are truncated)",
        f"- special tokens: {tokenizer.cls_token} {tokenizer.sep_token} {tokenizer.pad_token} "
        f"{tokenizer.unk_token} {tokenizer.mask_token}",
    ]
    if model_card:
        extra = dict(model_card)
        metrics = extra.pop("metrics", None)
        if metrics:
            lines += ["", "## Metrics", ""]
            lines += [f"- {key}: {value}" for key, value in metrics.items()]
        if extra:
            lines += ["", "## Notes", ""]
            lines += [f"- {key}: {value}" for key, value in extra.items()]
    example = REST_EXAMPLES["text_pair_classification" if pair else task]
    lines += [
        "",
        "## Serving",
        "",
        "Signatures: `serving_default` (raw text), `logits` (token ids), `tokenize`.",
        "A Python client must `import tensorflow_text` before `tf.saved_model.load`.",
        "",
        "REST request (`POST /v1/models/<name>:predict`):",
        "",
        "```json",
        json.dumps(example["request"], ensure_ascii=False),
        "```",
        "",
        "Response (shape):",
        "",
        "```json",
        json.dumps(example["response"], ensure_ascii=False),
        "```",
        "",
    ]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")


def _tf_variable(variable):
    """The `tf.Variable` behind a Keras 3 variable (TensorFlow backend)."""
    value = getattr(variable, "_value", None)
    if not isinstance(value, tf.Variable):
        raise ValueError(f"Variable {variable.path} is not backed by a tf.Variable; export needs the TF backend.")
    return value
