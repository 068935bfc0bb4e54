"""Augmented text for distillation (tfdistil.data.augment): each rule on its own, the rates
against their probabilities (binomial bounds), duplicates dropped, seeds, errors, and the
unlabelled examples appended to a dataset."""
import numpy as np
import pytest

from tfdistil.data import TextClassificationData
from tfdistil.data.augment import UNLABELLED, augment_texts, with_augmented

# 200 sentences of 30 distinct words each: every word occurs once in the corpus.
CORPUS = [" ".join(f"w{s}_{i}" for i in range(30)) for s in range(200)]


def test_mask_rule_alone_masks_every_word_and_drops_duplicates():
    augmented, source = augment_texts(["a b c", "d e"], copies=5, p_mask=1.0, p_replace=0.0, p_ngram=0.0)
    # Every copy of a sentence is the same all-mask sentence: one kept per sentence.
    assert augmented == ["[MASK] [MASK] [MASK]", "[MASK] [MASK]"]
    assert source.tolist() == [0, 1]


def test_ngram_rule_alone_keeps_a_contiguous_piece():
    sentence = "the quick brown fox jumps over the lazy dog"
    words = sentence.split()
    augmented, source = augment_texts([sentence], copies=200, p_mask=0.0, p_replace=0.0, p_ngram=1.0,
                                      max_ngram=3, seed=1)
    assert len(augmented) == len(set(augmented)) > 10
    assert sentence not in augmented
    for text in augmented:
        piece = text.split()
        assert 1 <= len(piece) <= 3
        assert any(words[i : i + len(piece)] == piece for i in range(len(words))), text
    assert set(source.tolist()) == {0}


def test_rule_rates_follow_their_probabilities():
    p_mask, p_replace = 0.1, 0.2
    augmented, source = augment_texts(CORPUS, copies=5, p_mask=p_mask, p_replace=p_replace, p_ngram=0.0, seed=3)
    assert len(augmented) == 5 * len(CORPUS)  # 30 words: two equal copies are (almost) impossible
    masked = replaced = total = 0
    vocabulary = {w for s in CORPUS for w in s.split()}
    for text, i in zip(augmented, source):
        new, old = text.split(), CORPUS[i].split()
        assert len(new) == len(old)
        for a, b in zip(new, old):
            total += 1
            if a == "[MASK]":
                masked += 1
            elif a != b:
                assert a in vocabulary
                replaced += 1
    # A replacement draws the same word with probability 1/6000: negligible here.
    for count, p in ((masked, p_mask), (replaced, p_replace * (1 - 1 / len(vocabulary)))):
        sigma = np.sqrt(total * p * (1 - p))
        assert abs(count - total * p) < 5 * sigma, (count, total * p)


def test_replacements_follow_the_corpus_word_counts():
    # "common" is 9 times as frequent as "rare": replacements must be drawn that way.
    corpus = ["common " * 9 + "rare"] * 50
    augmented, source = augment_texts(corpus, copies=20, p_mask=0.0, p_replace=1.0, p_ngram=0.0, seed=0)
    words = [w for text in augmented for w in text.split()]
    assert set(words) <= {"common", "rare"}
    # Copies are deduplicated per sentence, so count over the words of the kept copies only
    # roughly; the share of "rare" must be near 0.1, far from 0.5 (uniform over the vocabulary).
    share = words.count("rare") / len(words)
    assert 0.05 < share < 0.2, share


def test_seed_makes_copies_reproducible():
    a = augment_texts(CORPUS[:20], copies=3, seed=7)
    b = augment_texts(CORPUS[:20], copies=3, seed=7)
    c = augment_texts(CORPUS[:20], copies=3, seed=8)
    assert a[0] == b[0] and a[1].tolist() == b[1].tolist()
    assert a[0] != c[0]


def test_mask_token_is_the_given_one_and_empty_sentences_give_nothing():
    augmented, source = augment_texts(["", "x y"], copies=3, mask_token="<mask>", p_mask=1.0, p_replace=0.0,
                                      p_ngram=0.0)
    assert augmented == ["<mask> <mask>"] and source.tolist() == [1]


@pytest.mark.parametrize("kwargs,message", [
    (dict(p_mask=1.5), "p_mask must be in"),
    (dict(p_ngram=-0.1), "p_ngram must be in"),
    (dict(p_mask=0.6, p_replace=0.5), "p_mask \\+ p_replace"),
    (dict(copies=-1), "copies must be"),
    (dict(max_ngram=0), "max_ngram must be"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment_texts(["a b"], **kwargs)


def test_with_augmented_appends_unlabelled_copies():
    data = TextClassificationData(texts=CORPUS[:10], text_pairs=None, labels=np.arange(10) % 2,
                                  label_names=["neg", "pos"], path="train.tsv")
    out = with_augmented(data, copies=2, seed=0)
    assert out.texts[:10] == data.texts and out.labels[:10].tolist() == data.labels.tolist()
    assert len(out) == 30 and (out.labels[10:] == UNLABELLED).all() and UNLABELLED == -100
    assert out.labels.dtype == np.int32 and out.label_names == ["neg", "pos"]
    pairs = TextClassificationData(texts=["a"], text_pairs=["b"], labels=np.zeros(1, np.int32),
                                   label_names=["x"], path="pairs.tsv")
    with pytest.raises(ValueError, match="pairs.tsv: augmentation of sentence pairs"):
        with_augmented(pairs)
