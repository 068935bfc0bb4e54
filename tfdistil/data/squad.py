"""Extractive question answering data: SQuAD JSON, sliding windows over long contexts, answer spans.

    data = read_squad("dev.json", doc_stride=128, max_question_length=64)
    features = data.features(tokenizer)          # windows of at most tokenizer.sequence_length
    ds = make_qa_dataset(data, tokenizer, batch_size=32, shuffle=True)

One graph function, `qa_windows`, turns (question, context) strings into packed windows
`[CLS] question [SEP] context piece window [SEP]` with each context token's byte offsets in the
context. Training features, Python post-processing and the SavedModel's `serving_default` all go
through it, so the three see exactly the same windows (TensorFlow and tensorflow-text ops only).

Offsets: the context is split into words on the original characters with BERT's own delimiters
(whitespace, punctuation, CJK), each word is word-pieced on its own (`tokenize_words`), and a
piece's offsets come from the lengths of the vocabulary's pieces. When normalisation changes a
word's length (accents stripped, removed control characters) every piece of that word gets the
whole word's offsets. Windows follow BERT's `run_squad.py`: the question is cut to
`max_question_length` pieces, the context fills the rest, and window k starts at piece
k * min(doc_stride, room). A window that does not hold the whole answer is labelled [CLS] (0, 0).
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfdistil.data.readers import DataError
from tfdistil.text.packing import pack
from tfdistil.text.words import _DELIMITER_PATTERN, _KEEP_DELIMITER_PATTERN, replace_invalid_utf8

DEFAULT_DOC_STRIDE = 128
DEFAULT_MAX_QUESTION_LENGTH = 64
DEFAULT_MAX_ANSWER_LENGTH = 30
DEFAULT_N_BEST = 20
_CHUNK = 64  # examples windowed per call of `qa_windows` when making features


# ---------------------------------------------------------------------------------------------
# Reading


@dataclasses.dataclass
class SquadExample:
    """One question. `answers`: [(text, start character)], all references (empty when
    `is_impossible`, SQuAD v2.0); training uses the first."""

    qid: str
    title: str
    question: str
    context: str
    answers: list
    is_impossible: bool = False


@dataclasses.dataclass
class SquadData:
    """The questions of a SQuAD file and the windowing options to use on them."""

    examples: list
    path: str
    doc_stride: int = DEFAULT_DOC_STRIDE
    max_question_length: int = DEFAULT_MAX_QUESTION_LENGTH
    version: str = "1.1"
    label_names = None  # no classes: the jobs read these of every task's data
    num_classes = None  # no class count: the span head has start and end logits (load_hf refuses one for QA)
    _features: dict = dataclasses.field(default_factory=dict, repr=False)

    def __len__(self):
        return len(self.examples)

    def features(self, tokenizer):
        """The `QAFeatures` of these questions for `tokenizer` (computed once per tokenizer)."""
        key = (id(tokenizer), int(tokenizer.sequence_length))
        if key not in self._features:
            self._features = {key: make_features(self, tokenizer)}
        return self._features[key]


def _fail(path, title, qid, message):
    where = f"{path}: article {title!r}" + (f", question {qid}" if qid is not None else "")
    return DataError(f"{where}: {message}", path=path, value=qid)


def read_squad(path, doc_stride=DEFAULT_DOC_STRIDE, max_question_length=DEFAULT_MAX_QUESTION_LENGTH):
    """The questions of a SQuAD v1.1 or v2.0 JSON file (`data[].paragraphs[].qas[]`). DataError
    naming the article, the question id and what is wrong (e.g. an `answer_start` whose characters
    are not the answer text)."""
    path = str(path)
    if not isinstance(doc_stride, int) or doc_stride < 1:
        raise ValueError(f"doc_stride must be a positive int, got {doc_stride!r}")
    if not isinstance(max_question_length, int) or max_question_length < 1:
        raise ValueError(f"max_question_length must be a positive int, got {max_question_length!r}")
    try:
        with open(path, encoding="utf-8") as f:
            root = json.load(f)
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror or error}", path=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a JSON file: {error}", path=path) from None
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise DataError(f"{path}: not SQuAD JSON: expected an object with a 'data' list of articles", path=path)
    examples, seen = [], {}
    for number, article in enumerate(root["data"], 1):
        title = article.get("title", f"#{number}") if isinstance(article, dict) else f"#{number}"
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise _fail(path, title, None, "has no 'paragraphs' list")
        for paragraph in paragraphs:
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            if not isinstance(context, str):
                raise _fail(path, title, None, "a paragraph has no 'context' string")
            for qa in paragraph.get("qas", []):
                examples.append(_read_question(path, title, context, qa, seen))
    if not examples:
        raise DataError(f"{path}: no questions", path=path)
    return SquadData(examples, path, doc_stride, max_question_length, str(root.get("version", "1.1")))


def _read_question(path, title, context, qa, seen):
    qid = qa.get("id") if isinstance(qa, dict) else None
    if not isinstance(qid, str) or not qid:
        raise _fail(path, title, None, f"a question has no 'id': {str(qa)[:80]}")
    if qid in seen:
        raise _fail(path, title, qid, f"the id is used twice (also in article {seen[qid]!r})")
    seen[qid] = title
    question = qa.get("question")
    if not isinstance(question, str) or not question.strip():
        raise _fail(path, title, qid, f"no question text: {question!r}")
    impossible = bool(qa.get("is_impossible", False))
    raw = qa.get("answers", [])
    if not isinstance(raw, list):
        raise _fail(path, title, qid, f"'answers' is not a list: {raw!r}")
    if impossible and raw:
        raise _fail(path, title, qid, f"is_impossible is true but it has {len(raw)} answers")
    if not impossible and not raw:
        raise _fail(path, title, qid, "no answers (and not is_impossible)")
    answers = []
    for answer in raw:
        text = answer.get("text") if isinstance(answer, dict) else None
        start = answer.get("answer_start") if isinstance(answer, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise _fail(path, title, qid, f"an answer has no text: {answer!r}")
        if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < len(context):
            raise _fail(path, title, qid, f"answer {text!r}: answer_start {start!r} is not a character "
                                          f"position of the context (0 to {len(context) - 1})")
        found = context[start: start + len(text)]
        if found != text:
            raise _fail(path, title, qid, f"answer_start {start} does not match the answer text: the context "
                                          f"there reads {found!r}, the answer is {text!r}")
        answers.append((text, start))
    return SquadExample(qid, title, question, context, answers, impossible)


# ---------------------------------------------------------------------------------------------
# Windows (graph ops: shared by training, post-processing and serving)


def _piece_byte_lengths(tokenizer):
    """Bytes each vocabulary piece covers in normalised text ('##' not counted)."""
    lengths = [len(t[2:].encode("utf-8")) if t.startswith("##") else len(t.encode("utf-8"))
               for t in tokenizer.get_vocabulary()]
    return tf.constant(lengths, tf.int64)


def context_pieces(tokenizer, context):
    """Word-piece ids of each context with each piece's byte offsets [start, end) in the context.

    Args:
        tokenizer: a `WordPieceTokenizer`.
        context: string (batch,), valid UTF-8 (see `qa_windows`).
    Returns:
        (ids int32, starts int64, ends int64), RaggedTensors (batch, pieces).
    """
    words, starts, ends = tf_text.regex_split_with_offsets(
        context, _DELIMITER_PATTERN, _KEEP_DELIMITER_PATTERN)  # (batch, words)
    pieces = tokenizer.tokenize_words(words)  # (batch, words, pieces)
    word_pieces = pieces.values  # (total_words, pieces)
    ids = word_pieces.flat_values  # (total_pieces,)
    word_of_piece = word_pieces.value_rowids()  # (total_pieces,)
    length = tf.gather(_piece_byte_lengths(tokenizer), tf.cast(ids, tf.int64))  # (total_pieces,)
    before = tf.cumsum(length, exclusive=True)  # bytes of all earlier pieces
    within = before - tf.gather(before, tf.gather(word_pieces.row_splits, word_of_piece))
    word_start, word_end = starts.flat_values, ends.flat_values  # (total_words,)
    total = tf.math.unsorted_segment_sum(length, word_of_piece, tf.shape(word_start, out_type=tf.int64)[0])
    exact = tf.equal(total, word_end - word_start)  # the pieces spell the word byte for byte
    w_start, w_end, w_exact = (tf.gather(x, word_of_piece) for x in (word_start, word_end, exact))
    piece_start = tf.where(w_exact, w_start + within, w_start)
    piece_end = tf.where(w_exact, w_start + within + length, w_end)
    row_splits = tf.gather(word_pieces.row_splits, pieces.row_splits)  # (batch + 1,)
    ragged = [tf.RaggedTensor.from_row_splits(v, row_splits, validate=False) for v in (ids, piece_start, piece_end)]
    return tuple(ragged)


def qa_windows(tokenizer, question, context, doc_stride=DEFAULT_DOC_STRIDE,
               max_question_length=DEFAULT_MAX_QUESTION_LENGTH, pad_to_sequence_length=False):
    """Windows `[CLS] question [SEP] context window [SEP]` of at most `tokenizer.sequence_length`.

    Args:
        question, context: string (batch,).
    Returns: a dict of
        token_ids, segment_ids, padding_mask: int32 (windows, width);
        token_start, token_end: int64 (windows, width), byte offsets [start, end) of each context
            token in its (UTF-8 repaired) context, -1 on every other position;
        window_example: int64 (windows,), the example of each window (examples with no context
            piece still get one window);
        window_start: int64 (windows,), the window's first context piece;
        question_length: int64 (windows,), question pieces kept;
        context: string (batch,), the contexts the offsets refer to (invalid UTF-8 replaced);
        pieces: (starts, ends), int64 RaggedTensors (batch, pieces), every context piece's offsets.
    """
    sequence_length = int(tokenizer.sequence_length)
    if sequence_length - max_question_length - 3 < 1:
        raise ValueError(f"sequence_length {sequence_length} leaves no room for the context after a question "
                         f"of {max_question_length} pieces and [CLS] [SEP] [SEP]")
    # A NUL stops RegexSplitWithOffsets: a space (one byte, so offsets keep) stands in for it.
    context = tf.strings.regex_replace(replace_invalid_utf8(context), r"\x00", " ")
    ids, starts, ends = context_pieces(tokenizer, context)
    q_pieces = tokenizer.tokenize(question)[:, :max_question_length]  # (batch, <= max_q)
    q_len = q_pieces.row_lengths()  # (batch,)
    n_ctx = ids.row_lengths()
    room = sequence_length - 3 - q_len  # context pieces a window holds
    step = tf.minimum(room, tf.constant(doc_stride, tf.int64))
    n_win = 1 + tf.maximum((n_ctx - room + step - 1) // step, 0)  # (batch,)
    window_example = tf.repeat(tf.range(tf.size(n_win, out_type=tf.int64)), n_win)  # (windows,)
    k = tf.range(tf.reduce_sum(n_win)) - tf.gather(tf.cumsum(n_win, exclusive=True), window_example)
    w_start = k * tf.gather(step, window_example)
    w_len = tf.maximum(tf.minimum(tf.gather(room, window_example), tf.gather(n_ctx, window_example) - w_start), 0)
    first = tf.gather(ids.row_splits[:-1], window_example) + w_start  # flat index of each window's first piece
    take = tf.RaggedTensor.from_row_lengths(
        tf.range(tf.reduce_sum(w_len)) - tf.repeat(tf.cumsum(w_len, exclusive=True) - first, w_len),
        w_len, validate=False)  # (windows, pieces): flat piece indices
    ctx_ids = tf.gather(ids.flat_values, take)
    questions = tf.gather(q_pieces, window_example)  # (windows, q pieces)
    inputs = pack(questions, ctx_ids, sequence_length=sequence_length, cls_id=tokenizer.cls_token_id,
                  sep_id=tokenizer.sep_token_id, pad_id=tokenizer.pad_token_id,
                  pad_to_sequence_length=pad_to_sequence_length)
    width = tf.shape(inputs["token_ids"], out_type=tf.int64)[1]
    wq = tf.gather(q_len, window_example)
    j = tf.range(width)[tf.newaxis, :] - (wq + 2)[:, tf.newaxis]  # context piece of each position
    in_ctx = (j >= 0) & (j < w_len[:, tf.newaxis])  # (windows, width)
    flat = tf.where(in_ctx, first[:, tf.newaxis] + j, 0)
    token_start = tf.where(in_ctx, tf.gather(starts.flat_values, flat), -1)
    token_end = tf.where(in_ctx, tf.gather(ends.flat_values, flat), -1)
    return {**{k_: tf.cast(v, tf.int32) for k_, v in inputs.items()}, "token_start": token_start,
            "token_end": token_end, "window_example": window_example, "window_start": w_start,
            "question_length": wq, "context": context, "pieces": (starts, ends)}


# ---------------------------------------------------------------------------------------------
# Features


@dataclasses.dataclass
class QAFeatures:
    """The windows of a `SquadData` for one tokenizer, one entry a window (rows unpadded).

    token_ids, segment_ids: lists of int32 arrays; token_start, token_end: lists of int64 arrays
    (byte offsets, -1 off the context); example: int array, the question of each window;
    start_positions, end_positions: int arrays, the answer's tokens in the window (0, 0: [CLS]);
    byte_to_char: one int array a question's context, character index of each byte offset."""

    token_ids: list
    segment_ids: list
    token_start: list
    token_end: list
    example: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    byte_to_char: list

    def __len__(self):
        return len(self.example)

    @property
    def lengths(self):
        return np.array([len(t) for t in self.token_ids], np.int64)


def byte_to_char_map(text):
    """Character index of every byte offset 0..len(bytes) of `text` (UTF-8)."""
    sizes = [len(c.encode("utf-8")) for c in text]
    out = np.repeat(np.arange(len(text), dtype=np.int64), sizes)
    return np.concatenate([out, [len(text)]])


def _answer_bytes(example):
    text, start = example.answers[0]
    a = len(example.context[:start].encode("utf-8"))
    return a, a + len(text.encode("utf-8"))


def make_features(data, tokenizer):
    """The `QAFeatures` of `data` (windows by `qa_windows`, answers labelled on them)."""
    cols = {k: [] for k in ("token_ids", "segment_ids", "token_start", "token_end")}
    example_of, starts, ends = [], [], []
    room = int(tokenizer.sequence_length) - 3 - data.max_question_length
    if room < 1:
        raise DataError(f"{data.path}: a sequence length of {tokenizer.sequence_length} leaves no room for the "
                        f"context after a question of max_question_length={data.max_question_length} pieces and "
                        "[CLS] [SEP] [SEP]", path=data.path)
    byte_to_char = [byte_to_char_map(e.context) for e in data.examples]
    for lo in range(0, len(data), _CHUNK):
        chunk = data.examples[lo: lo + _CHUNK]
        w = qa_windows(tokenizer, tf.constant([e.question for e in chunk]), tf.constant([e.context for e in chunk]),
                       data.doc_stride, data.max_question_length)
        piece_starts, piece_ends = (x.to_list() for x in w.pop("pieces"))
        w = {k: v.numpy() for k, v in w.items() if k != "context"}
        lengths = w["padding_mask"].sum(axis=1)
        spans = {i: _answer_tokens(data, e, piece_starts[i], piece_ends[i])
                 for i, e in enumerate(chunk) if not e.is_impossible}
        for r, n in enumerate(lengths):
            i = int(w["window_example"][r])
            for key in cols:
                cols[key].append(w[key][r, :n])
            example_of.append(lo + i)
            s, t = 0, 0
            if i in spans:
                first, last = spans[i]
                q, w_start = int(w["question_length"][r]), int(w["window_start"][r])
                if w_start <= first and last < w_start + n - q - 3:  # the whole answer is in the window
                    s, t = first - w_start + q + 2, last - w_start + q + 2
            starts.append(s)
            ends.append(t)
    return QAFeatures(**cols, example=np.array(example_of), start_positions=np.array(starts, np.int32),
                      end_positions=np.array(ends, np.int32), byte_to_char=byte_to_char)


def _answer_tokens(data, example, starts, ends):
    """(first, last) context piece overlapping the first answer's bytes (`starts`, `ends`: the
    context pieces' byte offsets)."""
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    a, b = _answer_bytes(example)
    overlap = np.flatnonzero((starts < b) & (ends > a))
    if not len(overlap):
        text, start = example.answers[0]
        raise _fail(data.path, example.title, example.qid, f"answer {text!r} at {start} covers no word piece")
    return int(overlap[0]), int(overlap[-1])


# ---------------------------------------------------------------------------------------------
# tf.data


def make_qa_dataset(data, tokenizer, batch_size, shuffle=False, seed=0, epoch=None,
                    bucket_boundaries=None, log_truncation=True):
    """Batched `(features, labels)` of `data`'s windows: labels {"start_logits", "end_logits"}
    (int32 (batch,), the answer's positions, the names of `SpanQA`'s outputs).

    Shuffled (training): windows in random order (by `seed` and `epoch`), batched by length
    (`bucket_boundaries`, default the pipeline's) and padded per batch. Not shuffled: windows
    sorted by length (`qa_feature_order`) and padded per batch, an order `predict_windows`
    knows."""
    from tfdistil.data.pipeline import DEFAULT_BUCKET_BOUNDARIES, _check_batching, _examples, _ragged_ints

    del log_truncation  # windows never truncate a context
    feats = data.features(tokenizer)
    if not len(feats):
        raise ValueError(f"{data.path}: no examples to make a dataset of.")
    sequence_length = int(tokenizer.sequence_length)
    order = np.arange(len(feats)) if shuffle else qa_feature_order(feats)
    columns = (_ragged_ints([feats.token_ids[i] for i in order]), _ragged_ints([feats.segment_ids[i] for i in order]),
               tf.constant(feats.start_positions[order]), tf.constant(feats.end_positions[order]))
    ds = _examples(columns, len(feats), shuffle, seed, epoch)

    def element(token_ids, segment_ids, start, end):
        features = {"token_ids": token_ids, "segment_ids": segment_ids,
                    "padding_mask": tf.ones_like(token_ids)}
        return features, {"start_logits": start, "end_logits": end}

    ds = ds.map(element, num_parallel_calls=tf.data.AUTOTUNE)
    pads = ({"token_ids": tf.constant(tokenizer.pad_token_id, tf.int32), "segment_ids": tf.constant(0, tf.int32),
             "padding_mask": tf.constant(0, tf.int32)},
            {"start_logits": tf.constant(0, tf.int32), "end_logits": tf.constant(0, tf.int32)})
    if not shuffle:
        return ds.padded_batch(batch_size, padding_values=pads).prefetch(tf.data.AUTOTUNE)
    boundaries = _check_batching(batch_size, bucket_boundaries or DEFAULT_BUCKET_BOUNDARIES, sequence_length)
    ds = ds.bucket_by_sequence_length(
        element_length_func=lambda f, _: tf.shape(f["token_ids"])[0],
        bucket_boundaries=[b + 1 for b in boundaries], bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=pads)
    per_bucket = np.bincount(np.searchsorted(boundaries, feats.lengths, side="left"), minlength=len(boundaries) + 1)
    n = int(np.sum(-(-per_bucket // batch_size)))
    return ds.apply(tf.data.experimental.assert_cardinality(n)).prefetch(tf.data.AUTOTUNE)


def qa_feature_order(features):
    """The order of an unshuffled QA dataset's windows: by length (so batches pad little), stable."""
    return np.argsort(features.lengths, kind="stable")


def is_squad_file(path):
    """Whether `path` is a `.json` file in SQuAD layout (an object with `data[].paragraphs`)."""
    if not str(path).lower().endswith(".json") or not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return '"data"' in head and '"paragraphs"' in head
