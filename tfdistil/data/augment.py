"""Text augmentation: perturbed copies of the training sentences, for the teacher to label.

A student distilled on the labelled set alone sees only what hard-label training sees; Tang et
al. (2019) and TinyBERT (Jiao et al., 2020) distil on perturbed copies as well. The copies are
labelled `UNLABELLED` (-100), so `Distiller` trains on them through the teacher terms only.
Tang et al.'s rules, word by word: mask with `p_mask`, else swap for a corpus word with
`p_replace` (drawn from the corpus' word counts, not by part of speech); then with `p_ngram` keep
one n-gram, n uniform in 1..`max_ngram`. Copies equal to their sentence or to an earlier copy are
dropped.

Sentence pairs (`text_pairs`): the word rules perturb both sides, replacements drawn from the
words of both; the n-gram rule (with `p_ngram`) cuts one side, chosen at random, and keeps the
other whole, so a copy stays a pair of two texts. Regression copies are labelled `UNSCORED` (NaN):
the distilled student's target for them is the teacher's score alone.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from tfdistil.data.pipeline import IGNORE_INDEX
from tfdistil.data.readers import TextClassificationData

#: The label of an augmented example: no hard label, the teacher's outputs only.
UNLABELLED = IGNORE_INDEX
#: The score of an augmented regression example: no gold score, the teacher's score only.
UNSCORED = float("nan")


class _WordDraws:
    """The corpus' words by count: `draw(rng, shape)` gives words drawn with probability
    proportional to their counts (one cumulative distribution for the whole corpus, what
    Generator.choice(p=...) would rebuild for every sentence)."""

    def __init__(self, split):
        counts = Counter(w for words in split for w in words)
        self.vocab = np.array(list(counts), dtype=object)
        self.cdf = np.cumsum([counts[w] for w in self.vocab], dtype=np.float64)
        self.cdf /= max(self.cdf[-1], 1.0) if len(self.cdf) else 1.0

    def draw(self, rng, shape):
        return self.vocab[self.cdf.searchsorted(rng.random(shape), side="right")]


def _ngram_rule(words, length, start):
    """The n-gram of `length` (at most the sentence) at fraction `start` of the possible starts."""
    n = len(words)
    if n <= 1:
        return words
    length = min(int(length), n)
    first = int(start * (n - length + 1))
    return words[first : first + length]


def augment_texts(
    texts,
    copies: int = 4,
    *,
    text_pairs=None,
    mask_token: str = "[MASK]",
    p_mask: float = 0.1,
    p_replace: float = 0.1,
    p_ngram: float = 0.25,
    max_ngram: int = 5,
    seed: int = 0,
):
    """Perturbed copies of `texts`, or of the pairs (`texts`, `text_pairs`) (see the module
    docstring for the rules).

    Args:
        texts: the sentences (first sides of pairs); words are split on whitespace.
        copies: copies tried per sentence (duplicates are dropped, so some give fewer).
        text_pairs: the second side of each pair (as many as `texts`), or None.
        mask_token: the tokenizer's mask token (BERT's "[MASK]").
        p_mask, p_replace, p_ngram: probabilities of the three rules, each in [0, 1].
        max_ngram: the longest n-gram kept by the n-gram rule (>= 1).
        seed: the copies are a function of `texts` (and `text_pairs`) and `seed` alone.

    Returns:
        (augmented, source): the new sentences, or (first, second) pairs, and, for each, the
        index in `texts` it was made from. A sentence with no word (a pair with no word on
        either side) gives none.
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
    if text_pairs is not None and len(text_pairs) != len(texts):
        raise ValueError(f"text_pairs has {len(text_pairs)} entries but texts has {len(texts)}.")
    rules = _Rules(copies, mask_token, p_mask, p_replace, p_ngram, max_ngram)
    rng = np.random.default_rng(seed)
    if text_pairs is None:
        augmented, source = _single_copies([t.split() for t in texts], rules, rng)
    else:
        augmented, source = _pair_copies([t.split() for t in texts], [t.split() for t in text_pairs], rules, rng)
    return augmented, np.asarray(source, dtype=np.int64)


@dataclasses.dataclass(frozen=True)
class _Rules:
    copies: int
    mask_token: str
    p_mask: float
    p_replace: float
    p_ngram: float
    max_ngram: int

    def word_draws(self, rng, corpus, n):
        """(uniforms (copies, n) that decide mask / replace / keep, the replacement words)."""
        u = rng.random((self.copies, n))
        if self.p_replace > 0:
            return u, corpus.draw(rng, (self.copies, n))
        return u, np.empty((self.copies, n), dtype=object)

    def words(self, words, u, replacements):
        """Each word masked (u < p_mask), swapped for its replacement (u < p_mask + p_replace) or kept."""
        return [self.mask_token if u[i] < self.p_mask else replacements[i] if u[i] < self.p_mask + self.p_replace
                else w for i, w in enumerate(words)]


def _single_copies(split, rules, rng):
    corpus = _WordDraws(split)
    augmented, source = [], []
    for index, words in enumerate(split):
        if not words:
            continue
        seen = {" ".join(words)}
        u, replacements = rules.word_draws(rng, corpus, len(words))
        take_ngram = rng.random(rules.copies) < rules.p_ngram
        lengths = rng.integers(1, rules.max_ngram + 1, size=rules.copies)
        starts = rng.random(rules.copies)
        for c in range(rules.copies):
            new = rules.words(words, u[c], replacements[c])
            if take_ngram[c]:
                new = _ngram_rule(new, lengths[c], starts[c])
            text = " ".join(new)
            if text not in seen:
                seen.add(text)
                augmented.append(text)
                source.append(index)
    return augmented, source


def _pair_copies(firsts, seconds, rules, rng):
    """Pairs: the word rules on both sides (replacements drawn from the words of both), the n-gram
    rule on one side chosen at random per copy."""
    corpus = _WordDraws(firsts + seconds)
    augmented, source = [], []
    for index, pair in enumerate(zip(firsts, seconds)):
        if not (pair[0] or pair[1]):
            continue
        seen = {(" ".join(pair[0]), " ".join(pair[1]))}
        draws = [rules.word_draws(rng, corpus, len(words)) for words in pair]  # first side, then second
        take_ngram = rng.random(rules.copies) < rules.p_ngram
        cut_side = rng.integers(0, 2, size=rules.copies)  # the side the n-gram rule cuts
        lengths = rng.integers(1, rules.max_ngram + 1, size=rules.copies)
        starts = rng.random(rules.copies)
        for c in range(rules.copies):
            new = [rules.words(words, u[c], replacements[c]) for words, (u, replacements) in zip(pair, draws)]
            if take_ngram[c]:
                side = int(cut_side[c])
                new[side] = _ngram_rule(new[side], lengths[c], starts[c])
            copy = (" ".join(new[0]), " ".join(new[1]))
            if copy not in seen:
                seen.add(copy)
                augmented.append(copy)
                source.append(index)
    return augmented, source


def with_augmented(data: TextClassificationData, copies: int = 4, **kwargs) -> TextClassificationData:
    """`data` followed by `augment_texts` copies of its sentences or pairs that only the teacher
    labels: labelled `UNLABELLED` for classes, `UNSCORED` for regression scores. Keyword
    arguments go to `augment_texts`."""
    augmented, _ = augment_texts(data.texts, copies, text_pairs=data.text_pairs, **kwargs)
    texts, pairs = list(data.texts), None
    if data.text_pairs is None:
        texts += augmented
    else:
        texts += [first for first, _ in augmented]
        pairs = list(data.text_pairs) + [second for _, second in augmented]
    if data.regression:
        labels = np.concatenate([np.asarray(data.labels, np.float32), np.full(len(augmented), UNSCORED, np.float32)])
    else:
        labels = np.concatenate([np.asarray(data.labels, np.int32), np.full(len(augmented), UNLABELLED, np.int32)])
    return dataclasses.replace(data, texts=texts, text_pairs=pairs, labels=labels)
