"""Text augmentation: perturbed copies of the training sentences, for the teacher to label.

A student distilled on the labelled set alone sees only what hard-label training sees; Tang et
al. (2019) and TinyBERT (Jiao et al., 2020) distil on perturbed copies as well. The copies are
labelled `UNLABELLED` (-100), so `Distiller` trains on them through the teacher terms only.
Tang et al.'s rules, word by word: mask with `p_mask`, else swap for a corpus word with
`p_replace` (drawn from the corpus' word counts, not by part of speech); then with `p_ngram` keep
one n-gram, n uniform in 1..`max_ngram`. Copies equal to their sentence or to an earlier copy are
dropped.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from tfdistil.data.pipeline import IGNORE_INDEX
from tfdistil.data.readers import DataError, TextClassificationData

#: The label of an augmented example: no hard label, the teacher's outputs only.
UNLABELLED = IGNORE_INDEX


def augment_texts(
    texts,
    copies: int = 4,
    *,
    mask_token: str = "[MASK]",
    p_mask: float = 0.1,
    p_replace: float = 0.1,
    p_ngram: float = 0.25,
    max_ngram: int = 5,
    seed: int = 0,
):
    """Perturbed copies of `texts` (see the module docstring for the rules).

    Args:
        texts: the sentences; words are split on whitespace.
        copies: copies tried per sentence (duplicates are dropped, so some give fewer).
        mask_token: the tokenizer's mask token (BERT's "[MASK]").
        p_mask, p_replace, p_ngram: probabilities of the three rules, each in [0, 1].
        max_ngram: the longest n-gram kept by the n-gram rule (>= 1).
        seed: the copies are a function of `texts` and `seed` alone.

    Returns:
        (augmented, source): the new sentences and, for each, the index in `texts` it
        was made from.
    """
    for name, p in (("p_mask", p_mask), ("p_replace", p_replace), ("p_ngram", p_ngram)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}.")
    if p_mask + p_replace > 1.0:
        raise ValueError(f"p_mask + p_replace must be <= 1, got {p_mask} + {p_replace}.")
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}.")
    if max_ngram < 1:
        raise ValueError(f"max_ngram must be >= 1, got {max_ngram}.")
    rng = np.random.default_rng(seed)
    split = [t.split() for t in texts]
    counts = Counter(w for words in split for w in words)
    vocab = np.array(list(counts), dtype=object)
    # One cumulative distribution for the whole corpus (what Generator.choice(p=...) would
    # rebuild for every sentence): a uniform draw's position in it is a word drawn by count.
    cdf = np.cumsum([counts[w] for w in vocab], dtype=np.float64)
    cdf /= max(cdf[-1], 1.0) if len(cdf) else 1.0
    augmented, source = [], []
    for index, words in enumerate(split):
        if not words:
            continue
        n = len(words)
        original = " ".join(words)
        seen = {original}
        # One draw per copy and word decides mask / replace / keep.
        u = rng.random((copies, n))
        replacements = vocab[cdf.searchsorted(rng.random((copies, n)), side="right")] if p_replace > 0 else None
        take_ngram = rng.random(copies) < p_ngram
        lengths = rng.integers(1, max_ngram + 1, size=copies)
        starts = rng.random(copies)
        for c in range(copies):
            new = [
                mask_token if u[c, i] < p_mask else replacements[c, i] if u[c, i] < p_mask + p_replace else w
                for i, w in enumerate(words)
            ]
            if take_ngram[c] and n > 1:
                length = min(int(lengths[c]), n)
                start = int(starts[c] * (n - length + 1))
                new = new[start : start + length]
            text = " ".join(new)
            if text not in seen:
                seen.add(text)
                augmented.append(text)
                source.append(index)
    return augmented, np.asarray(source, dtype=np.int64)


def with_augmented(data: TextClassificationData, copies: int = 4, **kwargs) -> TextClassificationData:
    """`data` followed by `augment_texts` copies of its sentences, labelled `UNLABELLED`.

    Keyword arguments go to `augment_texts`. Sentence pairs raise `DataError`.
    """
    if data.text_pairs is not None:
        raise DataError(f"{data.path}: augmentation of sentence pairs is not supported (which segment to "
                        "perturb is the task's choice); distil without it.", path=data.path)
    augmented, _ = augment_texts(data.texts, copies, **kwargs)
    labels = np.concatenate([np.asarray(data.labels, np.int32), np.full(len(augmented), UNLABELLED, np.int32)])
    return dataclasses.replace(data, texts=list(data.texts) + augmented, labels=labels)
