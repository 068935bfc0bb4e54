"""Plain-Python references that tests hold the in-graph code against."""
import dataclasses
from typing import Sequence

import numpy as np

IGNORE_INDEX = -100  # Hugging Face's "no label" (torch cross-entropy's ignore_index)


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
