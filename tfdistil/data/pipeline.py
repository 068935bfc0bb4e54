"""tf.data input pipelines: tokenize in the pipeline, bucket by length, pad per batch.

Text never enters the model: strings are tokenized in a `Dataset.map` (outside any jit-compiled
step, where XLA cannot take strings), examples of similar length are batched together
(`bucket_by_sequence_length`) and each batch is padded only to its own longest example, so a
training step sees a handful of distinct shapes instead of always paying for `sequence_length`.

Both dataset builders yield ``(features, labels)`` with

* ``features["token_ids"]``, ``features["segment_ids"]``, ``features["padding_mask"]``: int32,
  shape (batch, L), where L is the batch's longest example (bucketing) or the tokenizer's
  `sequence_length` (``bucket_boundaries=None``);
* ``labels``: int32, shape (batch,) for classification (float32 scores for regression data),
  (batch, L) for token classification, where only the first word piece of each word carries the
  word's tag and every other position (later pieces, [CLS], [SEP], padding) holds `IGNORE_INDEX`
  (-100), the value to pass as
  ``ignore_class`` to `keras.losses.SparseCategoricalCrossentropy` and to skip in metrics.

The tokenizer is a `tfdistil.text.WordPieceTokenizer` (or anything with the same interface:
``tokenizer(text, text_pair=None)`` -> dict of (batch, L) int32 tensors, ``tokenize(text)`` and
``tokenize_words(words)`` -> ragged word-piece ids, ``sequence_length``, ``token_to_id``).
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfdistil.data.readers import TextClassificationData, TokenClassificationData
from tfdistil.text.packing import IGNORE_INDEX, num_special_tokens, pack_words, spread_word_labels

__all__ = [
    "train_and_dev_datasets",
    "IGNORE_INDEX",
    "DEFAULT_BUCKET_BOUNDARIES",
    "TruncationReport",
    "make_classification_dataset",
    "make_token_classification_dataset",
    "align_predictions",
    "count_truncated",
]

logger = logging.getLogger(__name__)

DEFAULT_BUCKET_BOUNDARIES = (16, 32, 64, 128)
# Strings are tokenized this many at a time (the tokenizer is vectorized), then unbatched
# and re-batched by length.
_TOKENIZE_CHUNK = 256
_FEATURES = ("token_ids", "segment_ids", "padding_mask")


# ---------------------------------------------------------------------------------------------
# Word predictions


def align_predictions(pred_ids, labels, ignore_index: int = IGNORE_INDEX) -> list[np.ndarray]:
    """Per-word predictions from per-token predictions: the ids at each word's first piece.

    Args:
        pred_ids: int array (batch, L) of predicted label ids (argmax of the logits).
        labels: int array (batch, L), the labels of the same batch (`ignore_index` off first
            pieces). `align_predictions(labels, labels)` gives the gold word labels.

    Returns:
        One int32 array per row, one entry per word kept after truncation, in word order.
        Words cut off by truncation are absent: row i has fewer entries than sentence i has
        words exactly when it was truncated. (Bucketing reorders examples: to match rows to
        sentences, build the dataset with `bucket_boundaries=None, shuffle=False`.)
    """
    pred_ids = np.asarray(pred_ids)
    labels = np.asarray(labels)
    if pred_ids.shape != labels.shape or pred_ids.ndim != 2:
        raise ValueError(
            f"pred_ids and labels must both have shape (batch, L); got {pred_ids.shape} and {labels.shape}."
        )
    keep = labels != ignore_index
    return [pred_ids[i][keep[i]].astype(np.int32) for i in range(len(labels))]


# ---------------------------------------------------------------------------------------------
# Truncation


@dataclasses.dataclass(frozen=True)
class TruncationReport:
    """How many examples are longer than the tokenizer's `sequence_length`.

    Attributes:
        num_examples: examples looked at.
        num_truncated: examples whose packed length (special tokens included) exceeds
            `sequence_length`.
        longest: the longest packed length before truncation.
        sequence_length: the tokenizer's.
        num_words_dropped: token classification only (else None): words whose first piece is
            cut off, i.e. labels the model never sees.
    """

    num_examples: int
    num_truncated: int
    longest: int
    sequence_length: int
    num_words_dropped: int | None = None

    @property
    def fraction_truncated(self) -> float:
        return self.num_truncated / self.num_examples if self.num_examples else 0.0


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _text_lengths(tokenizer, texts: Sequence[str], chunk: int) -> np.ndarray:
    """Word-piece count of each text, before truncation, no special tokens."""
    out = []
    for part in _chunks(len(texts), chunk):
        batch = tf.constant(texts[part])
        if hasattr(tokenizer, "tokenize"):
            pieces = tokenizer.tokenize(batch)
        else:  # only the documented interface: whitespace words, then each word's pieces
            pieces = tokenizer.tokenize_words(tf.strings.split(batch)).merge_dims(1, 2)
        out.append(pieces.row_lengths().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _word_piece_counts(tokenizer, sentences: Sequence[Sequence[str]], chunk: int) -> list[np.ndarray]:
    """Pieces of each word of each sentence (at least 1: the pipeline gives an empty word [UNK])."""
    out = []
    for part in _chunks(len(sentences), chunk):
        words = _ragged_strings(sentences[part])
        counts = tokenizer.tokenize_words(words).row_lengths(axis=2)  # (batch, words) ragged
        flat = np.maximum(counts.flat_values.numpy(), 1)
        out.extend(np.split(flat, counts.row_splits.numpy()[1:-1]))
    return out


def _packed_lengths(data, tokenizer, chunk: int = 2048) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Each example's packed length before truncation ([CLS]/[SEP] included) and, for token
    classification, each sentence's word-piece counts."""
    if isinstance(data, TextClassificationData):
        pair = data.text_pairs is not None
        lengths = _text_lengths(tokenizer, data.texts, chunk) + num_special_tokens(pair)
        if pair:
            lengths = lengths + _text_lengths(tokenizer, data.text_pairs, chunk)
        return lengths, None
    if isinstance(data, TokenClassificationData):
        counts = _word_piece_counts(tokenizer, data.sentences, chunk)
        return np.array([c.sum() + num_special_tokens() for c in counts], dtype=np.int64), counts
    raise TypeError(
        f"data must be TextClassificationData or TokenClassificationData, got {type(data).__name__}."
    )


def _truncation_report(data, lengths, counts, sequence_length: int, log: bool) -> TruncationReport:
    dropped = None
    if counts is not None:
        # A word is dropped when the pieces before its first one already fill the budget.
        budget = sequence_length - num_special_tokens()
        dropped = int(sum(int(np.sum(np.cumsum(c) - c >= budget)) for c in counts))
    report = TruncationReport(
        num_examples=len(lengths),
        num_truncated=int(np.sum(lengths > sequence_length)),
        longest=int(lengths.max()) if len(lengths) else 0,
        sequence_length=sequence_length,
        num_words_dropped=dropped,
    )
    if log:
        kind = "examples" if counts is None else "sentences"
        message = (
            f"{data.path}: {report.num_truncated} of {report.num_examples} {kind} "
            f"({100 * report.fraction_truncated:.2f}%) are longer than sequence_length={sequence_length} "
            f"and are truncated (longest: {report.longest} tokens)"
        )
        if dropped is not None:
            message += f"; {dropped} words lose their label"
        logger.log(logging.WARNING if report.num_truncated else logging.INFO, message)
    return report


def count_truncated(data, tokenizer, log: bool = True, chunk: int = 2048) -> TruncationReport:
    """Count the examples of `data` that `tokenizer` truncates to its `sequence_length`.

    Args:
        data: TextClassificationData or TokenClassificationData.
        tokenizer: the tokenizer the pipeline uses.
        log: log the result (WARNING when some are truncated, else INFO) on this module's logger.
        chunk: texts tokenized at a time.

    Returns:
        TruncationReport.
    """
    lengths, counts = _packed_lengths(data, tokenizer, chunk)
    return _truncation_report(data, lengths, counts, int(tokenizer.sequence_length), log)


def _num_batches(lengths: np.ndarray, boundaries, batch_size: int, drop_remainder: bool) -> int:
    """Batches `bucket_by_sequence_length` makes of examples of these (packed) lengths."""
    per_bucket = np.bincount(np.searchsorted(boundaries, lengths, side="left"), minlength=len(boundaries))
    if drop_remainder:
        return int(np.sum(per_bucket // batch_size))
    return int(np.sum(-(-per_bucket // batch_size)))


# ---------------------------------------------------------------------------------------------
# Datasets


def _special_id(tokenizer, name: str, default_token: str) -> int:
    value = getattr(tokenizer, f"{name}_token_id", None)
    return int(value) if value is not None else int(tokenizer.token_to_id(default_token))


def _check_batching(batch_size, bucket_boundaries, sequence_length):
    """The bucket boundaries to use: the user's below `sequence_length`, then `sequence_length`."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    if bucket_boundaries is None:
        return None
    boundaries = [int(b) for b in bucket_boundaries]
    if not boundaries or any(b < 1 for b in boundaries) or boundaries != sorted(set(boundaries)):
        raise ValueError(
            f"bucket_boundaries must be strictly increasing positive ints, got {bucket_boundaries!r}."
        )
    # Nothing is longer than sequence_length (the tokenizer truncates), so it closes the last
    # bucket; boundaries beyond it would only make empty buckets.
    return [b for b in boundaries if b < sequence_length] + [sequence_length]


def _ragged_strings(rows: Sequence[Sequence[str]]) -> tf.RaggedTensor:
    flat = [w for row in rows for w in row]
    return tf.RaggedTensor.from_row_lengths(
        tf.constant(flat, dtype=tf.string), tf.constant([len(r) for r in rows], dtype=tf.int64),
        validate=False,
    )


def _ragged_ints(rows: Sequence[np.ndarray]) -> tf.RaggedTensor:
    flat = np.concatenate(rows).astype(np.int32) if rows else np.zeros(0, np.int32)
    return tf.RaggedTensor.from_row_lengths(
        tf.constant(flat, dtype=tf.int32), tf.constant([len(r) for r in rows], dtype=tf.int64),
        validate=False,
    )


def _batch_by_length(
    ds, batch_size, boundaries, sequence_length, pad_id, label_pad, token_labels, drop_remainder,
    pad_to_bucket_boundary, label_dtype=tf.int32,
):
    """Batch variable-length (features, labels) elements: by bucket, or padded to sequence_length."""
    padding_values = (
        {"token_ids": tf.constant(pad_id, tf.int32), "segment_ids": tf.constant(0, tf.int32),
         "padding_mask": tf.constant(0, tf.int32)},
        tf.constant(label_pad, label_dtype),
    )
    if boundaries is None:
        label_shape = [sequence_length] if token_labels else []
        return ds.padded_batch(
            batch_size,
            padded_shapes=({k: [sequence_length] for k in _FEATURES}, label_shape),
            padding_values=padding_values,
            drop_remainder=drop_remainder,
        )
    # Our boundary b means "lengths up to b"; tf.data's bucket i holds lengths in
    # [boundary[i-1], boundary[i]) and pads to boundary[i] - 1: hence the + 1.
    return ds.bucket_by_sequence_length(
        element_length_func=lambda features, labels: tf.shape(features["token_ids"])[0],
        bucket_boundaries=[b + 1 for b in boundaries],
        bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        padding_values=padding_values,
        pad_to_bucket_boundary=pad_to_bucket_boundary,
        drop_remainder=drop_remainder,
    )


def _with_cardinality(ds, lengths, sequence_length, boundaries, batch_size, drop_remainder, exact):
    """Prefetch; and tell tf.data (so Keras) how many batches bucketing makes: with an unknown
    cardinality, `fit` shows no total in its progress bar and warns that the input "ran out of
    data" at the end of the first epoch."""
    if boundaries is None:  # one bucket
        n = _num_batches(np.zeros(len(lengths), np.int64), [sequence_length], batch_size, drop_remainder)
    elif exact:
        n = _num_batches(np.minimum(lengths, sequence_length), boundaries, batch_size, drop_remainder)
    else:
        return ds.prefetch(tf.data.AUTOTUNE)
    return ds.apply(tf.data.experimental.assert_cardinality(n)).prefetch(tf.data.AUTOTUNE)


def _unbatch_trimmed(ds):
    """(dense features padded per chunk, labels, lengths) chunks -> one trimmed example at a time."""

    @tf.autograph.experimental.do_not_convert
    def trim(features, labels, length):
        features = {k: v[:length] for k, v in features.items()}  # (length,)
        if labels.shape.rank == 1:
            labels = labels[:length]
        return features, labels

    return ds.unbatch().map(trim, num_parallel_calls=tf.data.AUTOTUNE)


def _examples(columns: tuple, n: int, shuffle: bool, seed: int, epoch) -> tf.data.Dataset:
    """One element a row of `columns` (tensors or ragged tensors of `n` rows), maybe shuffled.

    With `epoch` (an int64 tf.Variable) the order of an iteration is a function of `seed` and
    the value of `epoch` when the iteration starts: epoch e is the same in any process (what a
    resumed run needs to skip exactly the batches it already trained on). Without it, tf.data
    reshuffles each iteration from `seed`."""
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if not shuffle:
        return ds
    if epoch is None:
        return ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)

    def shuffled(_):
        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch.read_value(), tf.int64)])
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)  # (n,)
        # Sliced like the unshuffled columns, so ragged rows stay ragged.
        return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(c, order) for c in columns))

    return tf.data.Dataset.range(1).flat_map(shuffled)


def train_and_dev_datasets(make_dataset, train, dev, tokenizer, batch_size, seed):
    """(train dataset shuffled by epoch, dev dataset, the epoch variable) for `fit_resumable`:
    `make_dataset` is `make_classification_dataset` or `make_token_classification_dataset`."""
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    train_ds = make_dataset(train, tokenizer, batch_size, shuffle=True, seed=seed, epoch=epoch)
    return train_ds, make_dataset(dev, tokenizer, batch_size), epoch


def make_classification_dataset(
    data: TextClassificationData,
    tokenizer,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    bucket_boundaries: Sequence[int] | None = DEFAULT_BUCKET_BOUNDARIES,
    drop_remainder: bool = False,
    pad_to_bucket_boundary: bool = False,
    log_truncation: bool = True,
    epoch: tf.Variable | None = None,
) -> tf.data.Dataset:
    """A `(features, labels)` dataset for text (or text-pair) classification or regression.

    Args:
        data: from `read_text_classification` / `read_glue_tsv` / `load_sentiment_dataset`.
        tokenizer: a `tfdistil.text.WordPieceTokenizer`; its `sequence_length` is the longest
            packed sequence (longer ones are truncated).
        batch_size: examples a batch.
        shuffle: shuffle the examples (the whole dataset, reshuffled each epoch), seeded by
            `seed`: the same seed gives the same order of batches, epoch after epoch.
        seed: the shuffle seed.
        bucket_boundaries: the longest packed length of each bucket (tokens, [CLS]/[SEP]
            included): an example of length n goes to the first bucket whose boundary is >= n,
            and `tokenizer.sequence_length` always closes the last bucket. A batch holds
            examples of one bucket and is padded to its own longest example. None: no
            bucketing, every batch padded to `tokenizer.sequence_length` (and input order is
            kept when not shuffling; bucketing reorders examples).
        drop_remainder: drop partial batches (per bucket when bucketing).
        pad_to_bucket_boundary: pad each batch to its bucket's boundary instead of to its
            longest example: one shape per bucket (few XLA recompilations) at the cost of some
            padding.
        log_truncation: log how many examples `tokenizer` truncates (see `count_truncated`;
            the lengths are computed anyway, to count the batches).
        epoch: with `shuffle`, an int64 `tf.Variable` holding the epoch number: the order of
            an epoch is then a function of `seed` and the epoch alone, reproducible in a new
            process (`tfdistil.training.fit_resumable` sets it and resumes mid-epoch).

    Returns:
        tf.data.Dataset of ``({"token_ids", "segment_ids", "padding_mask"}: int32 (batch, L),
        labels: int32 (batch,))``, prefetched; labels float32 (batch,) for regression data.
    """
    if not isinstance(data, TextClassificationData):
        raise TypeError(f"data must be TextClassificationData, got {type(data).__name__}.")
    if len(data) == 0:
        raise ValueError(f"{data.path}: no examples to make a dataset of.")
    sequence_length = int(tokenizer.sequence_length)
    boundaries = _check_batching(batch_size, bucket_boundaries, sequence_length)
    lengths, _ = _packed_lengths(data, tokenizer)
    _truncation_report(data, lengths, None, sequence_length, log=log_truncation)
    pad_id = _special_id(tokenizer, "pad", "[PAD]")

    columns = [tf.constant(data.texts, tf.string)]
    if data.text_pairs is not None:
        columns.append(tf.constant(data.text_pairs, tf.string))
    # Class ids, or float scores for regression data (`data.regression`).
    label_dtype = tf.float32 if data.regression else tf.int32
    columns.append(tf.constant(data.labels, label_dtype))
    ds = _examples(tuple(columns), len(data), shuffle, seed, epoch)

    def tokenize(*batch):
        *texts, labels = batch
        features = tokenizer(*texts)  # (chunk, L_chunk) each
        features = {k: tf.cast(features[k], tf.int32) for k in _FEATURES}
        lengths = tf.reduce_sum(features["padding_mask"], axis=1)  # (chunk,)
        return features, labels, lengths

    ds = ds.batch(_TOKENIZE_CHUNK).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    ds = _unbatch_trimmed(ds)
    ds = _batch_by_length(
        ds, batch_size, boundaries, sequence_length, pad_id, 0, False, drop_remainder,
        pad_to_bucket_boundary, label_dtype,
    )
    # Only a tokenizer with `tokenize` gives lengths that are exactly the packed ones.
    exact = hasattr(tokenizer, "tokenize")
    return _with_cardinality(ds, lengths, sequence_length, boundaries, batch_size, drop_remainder, exact)


def make_token_classification_dataset(
    data: TokenClassificationData,
    tokenizer,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    bucket_boundaries: Sequence[int] | None = DEFAULT_BUCKET_BOUNDARIES,
    drop_remainder: bool = False,
    pad_to_bucket_boundary: bool = False,
    log_truncation: bool = True,
    epoch: tf.Variable | None = None,
) -> tf.data.Dataset:
    """A `(features, labels)` dataset for token classification (NER) with word-piece alignment.

    Each word is split into word pieces (`tokenizer.tokenize_words`); its tag id goes on the
    first piece, `IGNORE_INDEX` (-100) on its other pieces, on [CLS], [SEP] and on padding.
    Sequences longer than `tokenizer.sequence_length` lose their last pieces ([SEP] is kept);
    `count_truncated` says how many words that drops; `align_predictions(pred_ids, labels)` maps a
    batch's token predictions back to words.

    Args: as `make_classification_dataset`.

    Returns:
        tf.data.Dataset of ``({"token_ids", "segment_ids", "padding_mask"}: int32 (batch, L),
        labels: int32 (batch, L))``, prefetched.
    """
    if not isinstance(data, TokenClassificationData):
        raise TypeError(f"data must be TokenClassificationData, got {type(data).__name__}.")
    if len(data) == 0:
        raise ValueError(f"{data.path}: no examples to make a dataset of.")
    sequence_length = int(tokenizer.sequence_length)
    boundaries = _check_batching(batch_size, bucket_boundaries, sequence_length)
    lengths, counts = _packed_lengths(data, tokenizer)
    _truncation_report(data, lengths, counts, sequence_length, log=log_truncation)
    special_ids = {
        name: _special_id(tokenizer, name, f"[{name.upper()}]") for name in ("cls", "sep", "pad", "unk")
    }
    pad_id = special_ids["pad"]

    ds = _examples((_ragged_strings(data.sentences), _ragged_ints(data.tag_ids())), len(data), shuffle, seed, epoch)

    def tokenize(words, tags):
        # words, tags: (chunk, words) ragged
        packed = pack_words(
            tokenizer.tokenize_words(words),  # (chunk, words, pieces)
            sequence_length=sequence_length,
            cls_id=special_ids["cls"],
            sep_id=special_ids["sep"],
            pad_id=special_ids["pad"],
            # A word with no piece (only control characters) gets [UNK], so that it keeps its
            # label and `align_predictions` maps tokens back to words one to one.
            empty_word_id=special_ids["unk"],
            pad_to_sequence_length=False,
        )
        features = packed.inputs  # (chunk, width) each
        lengths = tf.reduce_sum(features["padding_mask"], axis=1)  # (chunk,)
        return features, spread_word_labels(packed, tags.flat_values), lengths

    ds = ds.batch(_TOKENIZE_CHUNK).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    ds = _unbatch_trimmed(ds)
    ds = _batch_by_length(
        ds, batch_size, boundaries, sequence_length, pad_id, IGNORE_INDEX, True, drop_remainder,
        pad_to_bucket_boundary,
    )
    return _with_cardinality(ds, lengths, sequence_length, boundaries, batch_size, drop_remainder, True)
