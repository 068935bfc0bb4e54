"""Packing word pieces into BERT inputs, `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`.

The one place that knows the layout, the longest-first truncation of pairs and where each
word's first piece lands: the tokenizer, the tf.data pipelines and the serving graphs all
pack through here, so training and serving see the same rows. Graph ops only (TF Serving
runs no Python); the dense gathers avoid ragged concatenation, whose runtime shape checks
make `tf.data` map functions slow to trace.
"""
from typing import NamedTuple

import tensorflow as tf

# The label of positions that carry none (special tokens, padding, a word's later pieces): the
# `ignore_class` of `keras.losses.SparseCategoricalCrossentropy`, and Hugging Face's value.
IGNORE_INDEX = -100


def num_special_tokens(pair=False):
    """Special tokens a packed row holds: 2 for `[CLS] a [SEP]`, 3 for `[CLS] a [SEP] b [SEP]`."""
    return 3 if pair else 2


def merge_inner_dims(pieces):
    """(rows, words, pieces) -> (rows, pieces), without ragged validation ops."""
    row_splits = tf.gather(pieces.values.row_splits, pieces.row_splits)
    return tf.RaggedTensor.from_row_splits(pieces.flat_values, row_splits, validate=False)


def longest_first_lengths(len_a, len_b, budget):
    """How many pieces of each segment Hugging Face's longest-first truncation keeps.

    Tokens are removed one at a time from the longer segment until both fit in
    `budget`; on a tie the extra odd token stays in the second segment (the rule of
    `tokenizers`, which `transformers>=5`'s BertTokenizer uses).

    Args:
        len_a, len_b: int64 tensors of shape (batch,).
        budget: Python int, room left after the special tokens.

    Returns:
        (keep_a, keep_b), int64 tensors of shape (batch,).
    """
    shorter = tf.minimum(len_a, len_b)
    a_is_longer = len_a > len_b
    half = budget // 2
    # Both longer than half the budget: split it, the odd token to the longer
    # segment (to the second one on a tie); else the shorter one stays whole.
    both_long = 2 * shorter > budget
    keep_shorter = tf.where(both_long, tf.constant(half, tf.int64), shorter)
    keep_longer = budget - keep_shorter
    keep_a = tf.where(a_is_longer, keep_longer, keep_shorter)
    keep_b = tf.where(a_is_longer, keep_shorter, keep_longer)
    fits = len_a + len_b <= budget
    return tf.where(fits, len_a, keep_a), tf.where(fits, len_b, keep_b)


def pack(
    first,
    second=None,
    *,
    sequence_length,
    cls_id,
    sep_id,
    pad_id,
    pad_to_sequence_length=True,
    pad_to_multiple_of=None,
):
    """Pack one or two segments of piece ids into BERT inputs, truncated and padded.

    Args:
        first: int RaggedTensor (batch, pieces), the first segment.
        second: optional int RaggedTensor (batch, pieces), the second segment.
        sequence_length: longest packed row, special tokens included; pairs are truncated
            longest-first (`longest_first_lengths`), a single segment from its end.
        cls_id, sep_id, pad_id: the special tokens' ids.
        pad_to_sequence_length: pad every row to `sequence_length`; if False, to the
            batch's longest row, rounded up to `pad_to_multiple_of` (never past
            `sequence_length`).

    Returns:
        A dict of (batch, width) tensors: `token_ids` (the pieces' dtype), `segment_ids`
        int32 (0 for `[CLS] a [SEP]`, 1 for `b [SEP]`) and `padding_mask` int32.
    """
    inputs, _ = _pack(
        first, second, sequence_length, cls_id, sep_id, pad_id, pad_to_sequence_length, pad_to_multiple_of
    )
    return inputs


def _pack(first, second, length, cls_id, sep_id, pad_id, pad_to_sequence_length, pad_to_multiple_of):
    """`pack`, and how many pieces of `first` each row keeps (int64 (batch,))."""
    len_first = first.row_lengths()
    if second is None:
        keep_first = tf.minimum(len_first, length - num_special_tokens())
        keep_second = tf.zeros_like(keep_first)
        total = keep_first + num_special_tokens()
    else:
        keep_first, keep_second = longest_first_lengths(
            len_first, second.row_lengths(), length - num_special_tokens(pair=True)
        )
        total = keep_first + keep_second + num_special_tokens(pair=True)

    # Row positions: [CLS] at 0, first[j - 1] for j <= keep_first, [SEP] at sep_1,
    # then second[j - sep_1 - 1] for j < sep_2, [SEP] at sep_2, then padding.
    if pad_to_sequence_length:
        width = length
    else:
        # An empty batch gets the width of an empty text ([CLS] [SEP]): a (0, 2) batch flows
        # through every layer, a (0, 0) one does not (TF Serving clients send empty batches).
        width = tf.maximum(tf.reduce_max(total), num_special_tokens(pair=second is not None))
        if pad_to_multiple_of is not None:
            multiple = tf.constant(pad_to_multiple_of, width.dtype)
            width = tf.minimum((width + multiple - 1) // multiple * multiple, length)
    sep_1 = tf.expand_dims(keep_first + 1, 1)  # (batch, 1)
    sep_2 = sep_1 + 1 + tf.expand_dims(keep_second, 1)  # (batch, 1)
    j = tf.range(width, dtype=tf.int64)[tf.newaxis, :] + tf.zeros_like(sep_1)  # (batch, width)
    first = first.to_tensor(shape=[None, length])  # (batch, length), cut before gathering
    token_ids = tf.gather(first, tf.clip_by_value(j - 1, 0, length - 1), batch_dims=1)
    is_sep = tf.equal(j, sep_1)
    if second is not None:
        second = second.to_tensor(shape=[None, length])
        from_second = tf.gather(second, tf.clip_by_value(j - sep_1 - 1, 0, length - 1), batch_dims=1)
        token_ids = tf.where(j > sep_1, from_second, token_ids)
        is_sep = is_sep | tf.equal(j, sep_2)
    token_ids = tf.where(is_sep, sep_id, token_ids)
    token_ids = tf.where(tf.equal(j, 0), cls_id, token_ids)
    padding_mask = j < tf.expand_dims(total, 1)  # (batch, width)
    token_ids = tf.where(padding_mask, token_ids, pad_id)
    segment_ids = (j > sep_1) & padding_mask
    inputs = {
        "token_ids": token_ids,
        "segment_ids": tf.cast(segment_ids, tf.int32),
        "padding_mask": tf.cast(padding_mask, tf.int32),
    }
    return inputs, keep_first


class PackedWords(NamedTuple):
    """Words packed as `[CLS] pieces [SEP]`, and where each word's first piece sits.

    Attributes:
        inputs: dict of (batch, width) tensors, as `pack` returns.
        word_row: int64 (total_words,), the row of each word.
        position: int64 (total_words,), the column of each word's first piece.
        kept: bool (total_words,), the word has a first piece that survived truncation.
    """

    inputs: dict
    word_row: tf.Tensor
    position: tf.Tensor
    kept: tf.Tensor


def pack_words(
    pieces, *, sequence_length, cls_id, sep_id, pad_id, empty_word_id=None, pad_to_sequence_length=True
):
    """Pack pre-split words' pieces back to back as `[CLS] pieces [SEP]` (one segment).

    Args:
        pieces: int RaggedTensor (batch, words, pieces), e.g. from `tokenize_words`.
        sequence_length, cls_id, sep_id, pad_id, pad_to_sequence_length: as in `pack`.
        empty_word_id: a word with no piece (only control characters) gets this one piece,
            so that it keeps its label; None: it gets no piece and is not `kept`.

    Returns:
        PackedWords.
    """
    word_pieces = pieces.values  # (total_words, pieces)
    word_splits = word_pieces.row_splits  # (total_words + 1,)
    values = tf.cast(word_pieces.flat_values, tf.int32)
    counts = word_pieces.row_lengths()  # (total_words,)
    if empty_word_id is not None:
        old_word = word_pieces.value_rowids()  # (old_pieces,)
        old_offset = tf.range(tf.size(values, out_type=tf.int64)) - tf.gather(word_splits, old_word)
        counts = tf.maximum(counts, 1)
        word_splits = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(counts)], axis=0)
        values = tf.tensor_scatter_nd_update(
            tf.fill([word_splits[-1]], tf.constant(empty_word_id, tf.int32)),
            tf.expand_dims(tf.gather(word_splits, old_word) + old_offset, 1),
            values,
        )  # (total_pieces,)
    row_splits = tf.gather(word_splits, pieces.row_splits)  # (batch + 1,)
    rows = tf.RaggedTensor.from_row_splits(values, row_splits, validate=False)  # (batch, pieces)
    inputs, keep = _pack(rows, None, sequence_length, cls_id, sep_id, pad_id, pad_to_sequence_length, None)
    word_row = pieces.value_rowids()  # (total_words,)
    start = word_splits[:-1] - tf.gather(row_splits, word_row)  # (total_words,) offset in its row
    kept = (counts > 0) & (start < tf.gather(keep, word_row))
    return PackedWords(inputs, word_row, start + 1, kept)  # + 1: after [CLS]


def spread_word_labels(packed, word_labels):
    """Token labels from word labels: each word's on its first piece, `IGNORE_INDEX` elsewhere.

    Args:
        packed: PackedWords.
        word_labels: int (total_words,), the label of each word (the flat values of a
            (batch, words) RaggedTensor).

    Returns:
        int32 (batch, width).
    """
    token_ids = packed.inputs["token_ids"]
    where = tf.stack([packed.word_row, packed.position], axis=1)  # (total_words, 2): row, column
    labels = tf.fill(tf.shape(token_ids), tf.constant(IGNORE_INDEX, tf.int32))  # (batch, width)
    return tf.tensor_scatter_nd_update(
        labels, tf.boolean_mask(where, packed.kept), tf.boolean_mask(tf.cast(word_labels, tf.int32), packed.kept)
    )


def first_piece_values(packed, token_values, default):
    """Per-word values from per-token ones: each word's at its first piece, `default` for a
    word that was not kept. `token_values`: (batch, width); returns (total_words,)."""
    where = tf.stack([packed.word_row, tf.where(packed.kept, packed.position, 0)], axis=1)
    return tf.where(packed.kept, tf.gather_nd(token_values, where), default)
