"""Serving signatures, one `ServingModule` subclass per task kind (`SERVING_MODULES`).

Every task has:
    logits(token_ids, segment_ids, padding_mask: int32 (batch, seq)) -> logits
        (SpanQA: start_logits, end_logits), the model on already-tokenized inputs.
        `segment_ids` is accepted (and ignored) by DistilBERT models too, so that
        clients do not depend on the architecture.
    tokenize(<the serving_default inputs>) -> token_ids, segment_ids, padding_mask: int32
        (batch, sequence_length), what `serving_default` feeds the model.
and a `serving_default` on raw strings, described by each subclass. A signature output
cannot be ragged, so every output is dense and batched on its first dimension (TF
Serving's REST row format). A new task kind is a subclass and an entry in `SERVING_MODULES`.
"""
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfdistil.export.tracking import Unwrapped, tf_variable
from tfdistil.layers.weight_casts import WeightCasts
from tfdistil.models.tasks import SpanQA, Task, TextClassifier, TextEmbedder, TextRegressor, TokenClassifier
from tfdistil.text.packing import first_piece_values, pack_words

DEFAULT_MAX_ANSWER_LENGTH = 30

# Request and response of each `serving_default` in TF Serving's REST row format.
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
    "text_regression": {
        "request": {"instances": [{"text": "a man is playing a guitar"}]},
        "response": {"predictions": [{"score": 1.2}]},
    },
    "text_pair_regression": {
        "request": {"instances": [{"text": "a man is playing a guitar", "text_pair": "a man plays the guitar"}]},
        "response": {"predictions": [{"score": 4.6}]},
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
    "text_embedding": {
        "request": {"instances": [{"text": "a man is playing a guitar"}]},
        "response": {"predictions": [{"embedding": [0.021, -0.043, 0.008]}]},
    },
    "question_answering": {
        "request": {"instances": [{"question": "who went home?", "context": "Tom went home"}]},
        "response": {
            "predictions": [{"answer": "Tom", "score": 7.2, "start_char": 0, "end_char": 3}]
        },
    },
}

# What Python's str.split() splits on (the CoNLL reader and `predict` split words so): RE2's \s and
# \p{Z}, plus the vertical tab, the information separators \x1c-\x1f and NEL.
_WHITESPACE = r"[\s\p{Z}\x0b\x1c-\x1f\x85]+"


def _string_spec(name):
    return tf.TensorSpec([None], tf.string, name=name)


def _ids_spec(name):
    return tf.TensorSpec([None, None], tf.int32, name=name)


def _check_label_names(model, label_names):
    """The class names to serve: `label_names` checked against the model, or LABEL_i."""
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


class ServingModule(tf.Module):
    """The model, the tokenizer and the export's options, with one tf.function per signature.

    A subclass serves one task kind: `kind`, `model_class`, `input_names` (the string inputs of
    `serving_default`), `pack` (the `tokenize` signature), `serve` (`serving_default`) and
    `warmup_inputs`; `check_options` validates the export's options for it (`accepts_pairs`:
    `pair=True` is allowed; `has_classes`: `label_names` are served).
    """

    kind = None
    model_class = None
    input_names = ("text",)
    accepts_pairs = False
    has_classes = True

    def __init__(self, model, tokenizer, label_names=None, pair=False,
                 max_answer_length=DEFAULT_MAX_ANSWER_LENGTH, cast_weights=True):
        super().__init__(name="tfdistil_serving")
        # The model is kept out of tf.Module's tracking, its variables are tracked as a
        # list instead (tfdistil.export.tracking says why).
        self._unwrapped = Unwrapped(model=model, tokenizer=tokenizer)
        # Under a mixed policy the projections' compute-dtype copies stand in for their float32
        # originals (which the traced functions then do not read).
        casts = WeightCasts(model, enabled=cast_weights)
        self._unwrapped.weight_casts = casts
        self.model_variables = [
            tf_variable(v) if (copy := casts.copy_of(v)) is None else copy for v in model.variables
        ]
        self._pair = pair
        self._max_answer_length = max_answer_length
        self._label_names = label_names

    @classmethod
    def check_options(cls, model, label_names=None, pair=False, max_answer_length=DEFAULT_MAX_ANSWER_LENGTH):
        """Raise ValueError on options this task cannot take; return the label names to serve."""
        if pair and not cls.accepts_pairs:
            raise ValueError(f"`pair=True` is for a TextClassifier or TextRegressor; got a {type(model).__name__}.")
        if not cls.has_classes:
            if label_names is not None:
                raise ValueError(
                    f"`label_names` is for classifiers; a {type(model).__name__} model has no classes."
                )
            return None
        return _check_label_names(model, label_names)

    @property
    def model(self):
        return self._unwrapped.model

    @property
    def tokenizer(self):
        return self._unwrapped.tokenizer

    @property
    def weight_casts(self):
        return self._unwrapped.weight_casts

    @property
    def rest_example(self):
        """{"request", "response"} of `serving_default` (`REST_EXAMPLES`)."""
        return REST_EXAMPLES[self.kind]

    def _labels(self):
        return tf.constant(self._label_names, tf.string)

    def run(self, inputs):
        """The model on a dict of (batch, seq) int32 token_ids, segment_ids, padding_mask."""
        return self.model(
            {
                "token_ids": inputs["token_ids"],
                "segment_ids": inputs["segment_ids"],
                "padding_mask": inputs["padding_mask"],
            },
            training=False,
        )

    def pack(self, *texts):
        """The model's inputs from the `serving_default` strings."""
        raise NotImplementedError

    def serve(self, *texts):
        """`serving_default`: the outputs from the strings."""
        raise NotImplementedError

    def warmup_inputs(self, texts):
        """{signature input name: list of strings}, a small batch for TF Serving's warm-up."""
        return {"text": list(texts)}

    def signatures(self):
        """{"serving_default", "logits", "tokenize"}: the tf.functions to save as signatures."""
        ids = [_ids_spec("token_ids"), _ids_spec("segment_ids"), _ids_spec("padding_mask")]

        @tf.function(input_signature=ids)
        def logits(token_ids, segment_ids, padding_mask):
            outputs = self.run(
                {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
            )
            if isinstance(outputs, dict):
                return {k: tf.cast(v, tf.float32) for k, v in outputs.items()}
            return {"logits": tf.cast(outputs, tf.float32)}

        texts = [_string_spec(name) for name in self.input_names]
        # Kept on the module so that tf.saved_model.save also saves them as functions.
        self.serving_default = tf.function(self.serve, input_signature=texts)
        self.logits = logits
        self.tokenize = tf.function(self.pack, input_signature=texts)
        return {"serving_default": self.serving_default, "logits": logits, "tokenize": self.tokenize}


class TextClassificationServing(ServingModule):
    """TextClassifier:
        serving_default(text: string (batch,)) ->
            probabilities: float32 (batch, num_classes), softmax of the logits
            class_ids:     int64 (batch,), argmax
            class_names:   string (batch,), `label_names[class_ids]`
        With `pair=True` it also takes `text_pair: string (batch,)` (second segment).
    """

    kind = "text_classification"
    model_class = TextClassifier
    accepts_pairs = True

    @property
    def input_names(self):
        return ("text", "text_pair") if self._pair else ("text",)

    @property
    def rest_example(self):
        return REST_EXAMPLES["text_pair_classification" if self._pair else self.kind]

    def pack(self, text, text_pair=None):
        return self.tokenizer(text, text_pair)

    def serve(self, text, text_pair=None):
        logits = self.run(self.pack(text, text_pair))  # (batch, classes)
        class_ids = tf.argmax(logits, axis=-1)  # (batch,) int64
        return {
            "probabilities": tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1),
            "class_ids": class_ids,
            "class_names": tf.gather(self._labels(), class_ids),
        }

    def warmup_inputs(self, texts):
        texts = list(texts)
        if self._pair:
            return {"text": texts, "text_pair": list(reversed(texts))}
        return {"text": texts}


class TextRegressionServing(ServingModule):
    """TextRegressor:
        serving_default(text: string (batch,)) ->
            score: float32 (batch,), the model's one output
        With `pair=True` it also takes `text_pair: string (batch,)` (second segment).
    """

    kind = "text_regression"
    model_class = TextRegressor
    accepts_pairs = True
    has_classes = False

    @property
    def input_names(self):
        return ("text", "text_pair") if self._pair else ("text",)

    @property
    def rest_example(self):
        return REST_EXAMPLES["text_pair_regression" if self._pair else self.kind]

    def pack(self, text, text_pair=None):
        return self.tokenizer(text, text_pair)

    def serve(self, text, text_pair=None):
        scores = self.run(self.pack(text, text_pair))  # (batch, 1)
        return {"score": tf.cast(scores, tf.float32)[:, 0]}

    def warmup_inputs(self, texts):
        texts = list(texts)
        if self._pair:
            return {"text": texts, "text_pair": list(reversed(texts))}
        return {"text": texts}


class TokenClassificationServing(ServingModule):
    """TokenClassifier:
        serving_default(text: string (batch,), whitespace-separated words) ->
            words:     string (batch, max_words), the input split on whitespace, padded with ""
            tags:      string (batch, max_words), the tag of each word, padded with ""
            tag_ids:   int32 (batch, max_words), padded with -1
            num_words: int32 (batch,), number of words of each text
        Per-word results are padded to the longest text of the batch; `num_words` says how
        many entries of a row are real. The tag of a word is the prediction at its first
        WordPiece (as in BERT's NER recipe). A word cut off by truncation to `sequence_length`,
        or a word that has no WordPiece at all (only control characters), gets tag "" and id -1.
    """

    kind = "token_classification"
    model_class = TokenClassifier

    def _pack_words(self, text):
        """Whitespace words (batch, words) and their pieces packed as `[CLS] pieces [SEP]`."""
        tokenizer = self.tokenizer
        words = tf_text.regex_split(text, _WHITESPACE)  # (batch, words)
        packed = pack_words(
            tokenizer.tokenize_words(words),  # (batch, words, pieces)
            sequence_length=tokenizer.sequence_length,
            cls_id=tokenizer.cls_token_id,
            sep_id=tokenizer.sep_token_id,
            pad_id=tokenizer.pad_token_id,
        )
        return words, packed

    def pack(self, text):
        return self._pack_words(text)[1].inputs

    def serve(self, text):
        words, packed = self._pack_words(text)
        predicted = tf.argmax(self.run(packed.inputs), axis=-1, output_type=tf.int32)  # (batch, length)
        flat_tag_ids = first_piece_values(packed, predicted, -1)  # (total_words,)
        flat_tags = tf.where(packed.kept, tf.gather(self._labels(), tf.maximum(flat_tag_ids, 0)), "")
        return {
            "words": words.to_tensor(default_value=""),
            "tags": words.with_flat_values(flat_tags).to_tensor(default_value=""),
            "tag_ids": words.with_flat_values(flat_tag_ids).to_tensor(default_value=-1),
            "num_words": tf.cast(words.row_lengths(), tf.int32),
        }


class SpanQAServing(ServingModule):
    """SpanQA:
        serving_default(question: string (batch,), context: string (batch,)) ->
            answer:     string (batch,), the context's characters [start_char, end_char)
            score:      float32 (batch,), start_logit + end_logit of the answer's span
            start_char, end_char: int32 (batch,), character (code point) offsets in the context
        A context longer than one window is cut into windows of `sequence_length` tokens in the
        graph (`tfdistil.data.squad.qa_windows`: question cut to 64 pieces, windows 128 context
        pieces apart); the answer is the best span over all windows of a question (the
        `n_best` = 20 best starts and ends per window, start <= end < start + `max_answer_length`),
        as `tfdistil.tasks.squad_metrics.best_answers` picks it. A question without any context
        token gets answer "", score -inf and offsets -1.
    The `tokenize` signature returns the windows (token_ids, segment_ids, padding_mask) and
    `window_example`, the question of each window.
    """

    kind = "question_answering"
    model_class = SpanQA
    input_names = ("question", "context")
    has_classes = False
    n_best = 20

    @classmethod
    def check_options(cls, model, label_names=None, pair=False, max_answer_length=DEFAULT_MAX_ANSWER_LENGTH):
        label_names = super().check_options(model, label_names, pair, max_answer_length)
        if not isinstance(max_answer_length, int) or max_answer_length < 1:
            raise ValueError(f"`max_answer_length` must be an int >= 1, got {max_answer_length!r}.")
        return label_names

    def _windows(self, question, context):
        from tfdistil.data.squad import DEFAULT_DOC_STRIDE, DEFAULT_MAX_QUESTION_LENGTH, qa_windows

        # A short sequence_length keeps at least one context piece a window.
        max_question = min(DEFAULT_MAX_QUESTION_LENGTH, int(self.tokenizer.sequence_length) - 4)
        return qa_windows(self.tokenizer, question, context, DEFAULT_DOC_STRIDE, max_question)

    def pack(self, question, context):
        w = self._windows(question, context)
        return {k: w[k] for k in ("token_ids", "segment_ids", "padding_mask", "window_example")}

    def serve(self, question, context):
        w = self._windows(question, context)
        outputs = self.run(w)
        in_context = w["token_start"] >= 0  # (windows, width)
        start_logits = tf.where(in_context, tf.cast(outputs["start_logits"], tf.float32), -np.inf)
        end_logits = tf.where(in_context, tf.cast(outputs["end_logits"], tf.float32), -np.inf)
        k = tf.minimum(self.n_best, tf.shape(start_logits)[1])
        # Best first, ties to the lower position.
        s_val, s_pos = tf.math.top_k(start_logits, k)  # (windows, k)
        e_val, e_pos = tf.math.top_k(end_logits, k)
        scores = s_val[:, :, tf.newaxis] + e_val[:, tf.newaxis, :]  # (windows, k starts, k ends)
        length = e_pos[:, tf.newaxis, :] - s_pos[:, :, tf.newaxis]
        valid = (length >= 0) & (length < self._max_answer_length) & tf.math.is_finite(scores)
        scores = tf.reshape(tf.where(valid, scores, -np.inf), [tf.shape(scores)[0], -1])  # (windows, k * k)
        window_best = tf.reduce_max(scores, axis=1)  # (windows,)
        pairs = tf.range(tf.shape(scores)[1])
        # The first best pair in row-major order: the better ranked start, then end.
        pick = tf.reduce_min(tf.where(scores == window_best[:, tf.newaxis], pairs, tf.shape(scores)[1]), axis=1)
        pick = tf.minimum(pick, tf.shape(scores)[1] - 1)
        start_byte = tf.gather(w["token_start"], tf.gather(s_pos, pick // k, batch_dims=1), batch_dims=1)
        end_byte = tf.gather(w["token_end"], tf.gather(e_pos, pick % k, batch_dims=1), batch_dims=1)
        # The best window of each question (ties: the first).
        example = w["window_example"]
        n = tf.shape(question, out_type=tf.int64)[0]
        best = tf.math.unsorted_segment_max(window_best, example, n)  # (batch,)
        windows = tf.range(tf.shape(example, out_type=tf.int64)[0])
        chosen = tf.math.unsorted_segment_min(
            tf.where(window_best == tf.gather(best, example), windows, tf.int64.max), example, n)
        chosen = tf.clip_by_value(chosen, 0, tf.maximum(tf.shape(example, out_type=tf.int64)[0] - 1, 0))
        # (A segment max over only -inf values gives the lowest float, not -inf.)
        has_answer = tf.math.unsorted_segment_max(
            tf.cast(tf.math.is_finite(window_best), tf.int32), example, n) > 0
        start_byte = tf.where(has_answer, tf.gather(start_byte, chosen), 0)
        end_byte = tf.where(has_answer, tf.gather(end_byte, chosen), 0)
        text = w["context"]
        answer = tf.strings.substr(text, start_byte, end_byte - start_byte)

        def chars(byte):
            return tf.strings.length(tf.strings.substr(text, tf.zeros_like(byte), byte), unit="UTF8_CHAR")

        return {
            "answer": tf.where(has_answer, answer, ""),
            "score": tf.where(has_answer, best, -np.inf),
            "start_char": tf.where(has_answer, chars(start_byte), -1),
            "end_char": tf.where(has_answer, chars(end_byte), -1),
        }

    def warmup_inputs(self, texts):
        texts = list(texts)
        return {"question": ["what is it?"] * len(texts), "context": texts}


class EmbeddingServing(ServingModule):
    """TextEmbedder:
        serving_default(text: string (batch,)) ->
            embedding: float32 (batch, hidden), unit length (a dot product is the cosine similarity)
        Texts are padded to the batch's longest one when the tokenizer pads per batch (the
        `load_hf` default for embedders); mean pooling ignores the padding either way.
    """

    kind = "text_embedding"
    model_class = TextEmbedder
    has_classes = False

    def pack(self, text):
        return self.tokenizer(text)

    def serve(self, text):
        return {"embedding": tf.cast(self.run(self.pack(text)), tf.float32)}


# Task kind -> how it serves. A new kind adds its subclass here.
SERVING_MODULES = {
    module.kind: module
    for module in (TextClassificationServing, TextRegressionServing, TokenClassificationServing, SpanQAServing,
                   EmbeddingServing)
}


def serving_module_class(model):
    """The `ServingModule` subclass for a built tfdistil task model; ValueError otherwise."""
    for module in SERVING_MODULES.values():
        if isinstance(model, module.model_class):
            if not model.built:
                raise ValueError(f"The {type(model).__name__} {model.name!r} is not built.")
            return module
    kind = "tfdistil Task " if isinstance(model, Task) else ""
    names = [module.model_class.__name__ for module in SERVING_MODULES.values()]
    raise ValueError(
        f"export_saved_model exports a tfdistil {', '.join(names[:-1])} or {names[-1]}; "
        f"got the {kind}{type(model).__name__} {getattr(model, 'name', model)!r}."
    )
