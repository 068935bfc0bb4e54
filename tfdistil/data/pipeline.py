"""tf.data input pipelines: tokenize in the pipeline, bucket by length, pad per batch.

Text never enters the model: strings are tokenized in a `Dataset.map` (outside any jit-compiled
step, where XLA cannot take strings), examples of similar length are batched together
(`bucket_by_sequence_length`) and each batch is padded only to its own longest example, so a
training step sees a handful of distinct shapes instead of always paying for `sequence_length`.

Both dataset builders yield ``(features, labels)`` with

* ``features["token_ids"]``, ``features["segment_ids"]``, ``features["padding_mask"]``: int32,
  shape (batch, L), where L is the batch's longest example (bucketing) or the tokenizer's
  `sequence_length` (``bucket_boundaries=None``);
* ``labels``: int32, shape (batch,) for classification, (batch, L) for token classification, where
  only the first word piece of each word carries the word's tag and every other position (later
  pieces, [CLS], [SEP], padding) holds `IGNORE_INDEX` (-100), the value to pass as
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

__all__ = [
    "train_and_dev_datasets",
    "IGNORE_INDEX",
    "DEFAULT_BUCKET_BOUNDARIES",
    "AlignedLabels",
    "TruncationReport",
    "make_classification_dataset",
    "make_token_classification_dataset",
    "align_labels",
    "align_predictions",
    "count_truncated",
]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100
DEFAULT_BUCKET_BOUNDARIES = (16, 32, 64, 128)
# Strings are tokenized this many at a time (the tokenizer is vectorized), then unbatched
# and re-batched by length.
_TOKENIZE_CHUNK = 256
_FEATURES = ("token_ids", "segment_ids", "padding_mask")


# ---------------------------------------------------------------------------------------------
# Pure-Python label alignment (the reference the TF pipeline is tested against)


@dataclasses.dataclass(frozen=True)
class AlignedLabels:
    """Word labels spread over a packed `[CLS] pieces [SEP]` sequence.

    Attributes:
        labels: int32 (num_tokens,): a word's label on its first piece, `ignore_index` elsewhere.
        word_ids: int32 (num_tokens,): the word each token came from, -1 for [CLS]/[SEP]
            (Hugging Face's `word_ids()` with None as -1).
        num_words_kept: words whose first piece survived truncation.
    """

    labels: np.ndarray
    word_ids: np.ndarray
    num_words_kept: int


def align_labels(
    word_piece_counts: Sequence[int],
    word_labels: Sequence[int],
    sequence_length: int,
    ignore_index: int = IGNORE_INDEX,
) -> AlignedLabels:
    """Spread word labels over word pieces, as the token-classification pipeline does.

    The sequence is ``[CLS] pieces... [SEP]``, truncated to `sequence_length` tokens (pieces are
    cut from the end, [SEP] stays). A word's label goes on its first piece; its other pieces,
    [CLS] and [SEP] get `ignore_index`. A word with 0 pieces gets no position (the pipeline
    gives such words an [UNK] piece so that this does not happen).

    Example: counts [1, 2, 1], labels [3, 0, 5], sequence_length 8 ->
    labels [-100, 3, 0, -100, 5, -100], word_ids [-1, 0, 1, 1, 2, -1].

    Returns:
        AlignedLabels (unpadded: num_tokens = min(sum(counts), sequence_length - 2) + 2).
    """
    if len(word_piece_counts) != len(word_labels):
        raise ValueError(
            f"{len(word_piece_counts)} word piece counts but {len(word_labels)} word labels."
        )
    if sequence_length < 2:
        raise ValueError(f"sequence_length must be at least 2 ([CLS] and [SEP]), got {sequence_length}.")
    labels, word_ids = [ignore_index], [-1]
    budget = sequence_length - 2
    for word, (count, label) in enumerate(zip(word_piece_counts, word_labels)):
        if count < 0:
            raise ValueError(f"word {word} has a negative piece count {count}.")
        for piece in range(count):
            if len(labels) - 1 >= budget:
                break
            labels.append(label if piece == 0 else ignore_index)
            word_ids.append(word)
    kept = len({w for w in word_ids if w >= 0})
    labels.append(ignore_index)
    word_ids.append(-1)
    return AlignedLabels(np.array(labels, np.int32), np.array(word_ids, np.int32), kept)


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
        lengths = _text_lengths(tokenizer, data.texts, chunk) + 2  # [CLS] a [SEP]
        if data.text_pairs is not None:
            lengths = lengths + _text_lengths(tokenizer, data.text_pairs, chunk) + 1  # b [SEP]
        return lengths, None
    if isinstance(data, TokenClassificationData):
        counts = _word_piece_counts(tokenizer, data.sentences, chunk)
        return np.array([c.sum() + 2 for c in counts], dtype=np.int64), counts
    raise TypeError(
        f"data must be TextClassificationData or TokenClassificationData, got {type(data).__name__}."
    )


def _truncation_report(data, lengths, counts, sequence_length: int, log: bool) -> TruncationReport:
    dropped = None
    if counts is not None:
        # A word is dropped when the pieces before its first one already fill the budget.
        budget = sequence_length - 2
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
    pad_to_bucket_boundary,
):
    """Batch variable-length (features, labels) elements: by bucket, or padded to sequence_length."""
    padding_values = (
        {"token_ids": tf.constant(pad_id, tf.int32), "segment_ids": tf.constant(0, tf.int32),
         "padding_mask": tf.constant(0, tf.int32)},
        tf.constant(label_pad, tf.int32),
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
    """A `(features, labels)` dataset for text (or text-pair) classification.

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
        labels: int32 (batch,))``, prefetched.
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
    columns.append(tf.constant(data.labels, tf.int32))
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
        pad_to_bucket_boundary,
    )
    # Only a tokenizer with `tokenize` gives lengths that are exactly the packed ones.
    exact = hasattr(tokenizer, "tokenize")
    return _with_cardinality(ds, lengths, sequence_length, boundaries, batch_size, drop_remainder, exact)


def _align_chunk(pieces: tf.RaggedTensor, tags: tf.RaggedTensor, sequence_length: int, ids: dict):
    """Pack word pieces into `[CLS] pieces [SEP]` rows with first-piece labels (graph code).

    Index arithmetic on flat tensors rather than ragged ops: ragged constructors add runtime
    shape assertions (tf.cond graphs) that make the map function slow to trace and to start.

    Args:
        pieces: int RaggedTensor (chunk, words, pieces), from `tokenizer.tokenize_words`.
        tags: int RaggedTensor (chunk, words), the tag id of each word.
        sequence_length: longest packed row.
        ids: the "cls", "sep", "pad" and "unk" token ids.

    Returns:
        (token_ids, labels, lengths): int32 (chunk, width), int32 (chunk, width), int32 (chunk,).
    """
    word_pieces = pieces.values  # (total_words, pieces)
    # A word with no piece (only control characters) gets [UNK], so that it keeps its label and
    # `align_predictions` maps tokens back to words one to one.
    counts = tf.maximum(word_pieces.row_lengths(), 1)  # (total_words,)
    word_start = tf.cumsum(counts, exclusive=True)  # (total_words,) first piece, in the new flat order
    total = tf.reduce_sum(counts)
    old_word = word_pieces.value_rowids()  # (old_pieces,)
    old_offset = tf.range(tf.size(word_pieces.flat_values, out_type=tf.int64)) - tf.gather(
        word_pieces.row_splits, old_word
    )  # (old_pieces,) position inside its word
    flat_ids = tf.tensor_scatter_nd_update(
        tf.fill([total], tf.constant(ids["unk"], tf.int32)),
        tf.expand_dims(tf.gather(word_start, old_word) + old_offset, 1),
        tf.cast(word_pieces.flat_values, tf.int32),
    )  # (total,)
    piece_word = tf.repeat(tf.range(tf.size(counts, out_type=tf.int64)), counts)  # (total,)
    positions = tf.range(total)
    first = tf.equal(positions, tf.gather(word_start, piece_word))
    piece_labels = tf.where(
        first, tf.gather(tf.cast(tags.flat_values, tf.int32), piece_word), IGNORE_INDEX
    )  # (total,)

    chunk = pieces.nrows()
    word_sentence = pieces.value_rowids()  # (total_words,)
    piece_sentence = tf.gather(word_sentence, piece_word)  # (total,)
    per_sentence = tf.math.unsorted_segment_sum(counts, word_sentence, chunk)  # (chunk,)
    sentence_start = tf.cumsum(per_sentence, exclusive=True)
    piece_position = positions - tf.gather(sentence_start, piece_sentence)  # (total,) in its sentence
    # Truncation: keep the first sequence_length - 2 pieces, room for [CLS] and [SEP].
    keep = piece_position < sequence_length - 2
    lengths = tf.minimum(per_sentence, sequence_length - 2) + 2  # (chunk,)
    width = tf.reduce_max(lengths)
    where = tf.stack(
        [tf.boolean_mask(piece_sentence, keep), tf.boolean_mask(piece_position, keep) + 1], axis=1
    )  # (kept, 2): row, column after [CLS]
    rows = tf.range(chunk)
    cls_at = tf.stack([rows, tf.zeros_like(rows)], axis=1)
    sep_at = tf.stack([rows, lengths - 1], axis=1)

    token_ids = tf.fill([chunk, width], tf.constant(ids["pad"], tf.int32))  # (chunk, width)
    token_ids = tf.tensor_scatter_nd_update(token_ids, where, tf.boolean_mask(flat_ids, keep))
    for at, name in ((cls_at, "cls"), (sep_at, "sep")):
        value = tf.fill([chunk], tf.constant(ids[name], tf.int32))
        token_ids = tf.tensor_scatter_nd_update(token_ids, at, value)
    labels = tf.fill([chunk, width], tf.constant(IGNORE_INDEX, tf.int32))  # (chunk, width)
    labels = tf.tensor_scatter_nd_update(labels, where, tf.boolean_mask(piece_labels, keep))
    return token_ids, labels, tf.cast(lengths, tf.int32)


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
    `count_truncated` says how many words that drops. `align_labels` is the same rule in plain
    Python; `align_predictions(pred_ids, labels)` maps a batch's token predictions back to words.

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
        pieces = tokenizer.tokenize_words(words)  # (chunk, words, pieces)
        token_ids, labels, row_lengths = _align_chunk(pieces, tags, sequence_length, special_ids)
        mask = tf.cast(tf.sequence_mask(row_lengths, tf.shape(token_ids)[1]), tf.int32)  # (chunk, width)
        features = {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids), "padding_mask": mask}
        return features, labels, row_lengths

    ds = ds.batch(_TOKENIZE_CHUNK).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE)
    ds = _unbatch_trimmed(ds)
    ds = _batch_by_length(
        ds, batch_size, boundaries, sequence_length, pad_id, IGNORE_INDEX, True, drop_remainder,
        pad_to_bucket_boundary,
    )
    return _with_cardinality(ds, lengths, sequence_length, boundaries, batch_size, drop_remainder, True)
