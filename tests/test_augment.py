"""Augmented text for distillation (tfdistil.data.augment): each rule on its own, the rates
against their probabilities (binomial bounds), duplicates dropped, seeds, errors, the
unlabelled examples appended to a dataset; sentence pairs (both sides perturbed, one side cut);
regression copies scored NaN, which the Distiller's score terms leave to the teacher."""

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
    assert out.labels.dtype == np.int32 and out.label_names == ["neg", "pos"] and out.text_pairs is None


# ----- sentence pairs


def test_pair_mask_rule_masks_both_sides_and_drops_duplicates():
    augmented, source = augment_texts(["a b", "c"], copies=4, text_pairs=["d", "e f g"], p_mask=1.0,
                                      p_replace=0.0, p_ngram=0.0)
    assert augmented == [("[MASK] [MASK]", "[MASK]"), ("[MASK]", "[MASK] [MASK] [MASK]")]
    assert source.tolist() == [0, 1]


def test_pair_ngram_rule_cuts_one_side_and_keeps_the_other_whole():
    a, b = "the quick brown fox jumps", "over a lazy dog today"
    augmented, source = augment_texts([a], copies=400, text_pairs=[b], p_mask=0.0, p_replace=0.0, p_ngram=1.0,
                                      max_ngram=2, seed=0)
    # By hand: a side of 5 words has 5 pieces of one word and 4 of two; a copy cuts one side and
    # keeps the other, so the distinct copies are the 9 cuts of `a` with `b` whole and the 9 cuts
    # of `b` with `a` whole (each has probability >= 1/2 * 1/2 * 1/5 a try: 400 tries see them all).
    def pieces(text):
        words = text.split()
        return {" ".join(words[i : i + n]) for n in (1, 2) for i in range(len(words) - n + 1)}

    expected = {(p, b) for p in pieces(a)} | {(a, p) for p in pieces(b)}
    assert len(pieces(a)) == 9 and len(expected) == 18
    assert len(augmented) == 18 and set(augmented) == expected
    assert source.tolist() == [0] * 18


def test_pair_replacements_come_from_both_sides():
    # Every word occurs 10 times in the corpus, on one side only; a replacement on either side
    # is drawn from all six, so both sides of the copies hold words of the other side.
    augmented, _ = augment_texts(["a b c"] * 10, copies=5, text_pairs=["x y z"] * 10, p_mask=0.0, p_replace=1.0,
                                 p_ngram=0.0, seed=0)
    assert len(augmented) > 30
    for side in zip(*augmented):
        words = [w for text in side for w in text.split()]
        assert all(len(text.split()) == 3 for text in side)
        assert set(words) == set("abcxyz")
        # uniform over six words: each side's share of a / b / c near 1/2 (binomial, 5 sigma)
        share, n = sum(w in "abc" for w in words) / len(words), len(words)
        assert abs(share - 0.5) < 5 * np.sqrt(0.25 / n), share


def test_pair_mask_rate_and_source_alignment():
    texts, pairs = CORPUS[:100], CORPUS[100:]
    augmented, source = augment_texts(texts, copies=3, text_pairs=pairs, p_mask=0.2, p_replace=0.0, p_ngram=0.0,
                                      seed=4)
    assert len(augmented) == len(source) == 300
    masked = total = 0
    for (new_a, new_b), i in zip(augmented, source):
        for new, old in ((new_a, texts[i]), (new_b, pairs[i])):
            new, old = new.split(), old.split()
            assert len(new) == len(old)
            assert all(x == y or x == "[MASK]" for x, y in zip(new, old))
            masked += sum(x == "[MASK]" for x in new)
            total += len(new)
    assert total == 300 * 60
    assert abs(masked - 0.2 * total) < 5 * np.sqrt(total * 0.2 * 0.8)


def test_pairs_seeded_empty_pairs_skipped_and_errors():
    a = augment_texts(CORPUS[:20], copies=2, text_pairs=CORPUS[20:40], seed=1)
    b = augment_texts(CORPUS[:20], copies=2, text_pairs=CORPUS[20:40], seed=1)
    c = augment_texts(CORPUS[:20], copies=2, text_pairs=CORPUS[20:40], seed=2)
    assert a[0] == b[0] and a[1].tolist() == b[1].tolist() and a[0] != c[0]
    # An empty side stays empty; a pair with no word at all gives nothing.
    augmented, source = augment_texts(["", "x"], copies=3, text_pairs=["", ""], p_mask=1.0, p_replace=0.0,
                                      p_ngram=0.0)
    assert (augmented, source.tolist()) == ([("[MASK]", "")], [1])
    with pytest.raises(ValueError, match="text_pairs has 1 entries but texts has 2"):
        augment_texts(["a", "b"], text_pairs=["c"])
    with pytest.raises(ValueError, match="p_mask must be in"):
        augment_texts(["a"], text_pairs=["b"], p_mask=2.0)


def test_with_augmented_pairs_and_regression_scores():
    pairs = TextClassificationData(texts=["a b", "c d"], text_pairs=["e", "f g"], labels=np.array([1, 0], np.int32),
                                   label_names=["no", "yes"], path="pairs.tsv")
    out = with_augmented(pairs, copies=3, p_mask=1.0, p_replace=0.0, p_ngram=0.0)
    assert out.texts == ["a b", "c d", "[MASK] [MASK]", "[MASK] [MASK]"]
    assert out.text_pairs == ["e", "f g", "[MASK]", "[MASK] [MASK]"]
    assert out.labels.tolist() == [1, 0, UNLABELLED, UNLABELLED] and out.labels.dtype == np.int32
    scores = TextClassificationData(texts=["a b", "c d"], text_pairs=["e", "f g"],
                                    labels=np.array([4.5, 0.25], np.float32), label_names=None, path="stsb.tsv")
    out = with_augmented(scores, copies=3, p_mask=1.0, p_replace=0.0, p_ngram=0.0)
    assert out.regression and out.labels.dtype == np.float32 and len(out) == 4
    assert out.labels[:2].tolist() == [4.5, 0.25] and np.isnan(out.labels[2:]).all()
    single = TextClassificationData(texts=["a b"], text_pairs=None, labels=np.array([1.5], np.float32),
                                    label_names=None, path="scores.tsv")
    out = with_augmented(single, copies=2, p_mask=1.0, p_replace=0.0, p_ngram=0.0)
    assert out.texts == ["a b", "[MASK] [MASK]"] and out.text_pairs is None and np.isnan(out.labels[1])


def test_unscored_copies_learn_from_the_teacher_score_alone():
    """PerExampleScore with NaN gold scores: the gold term sums the scored examples' squared
    errors over the whole batch (as a classifier's hard term counts unlabelled examples), the
    teacher term every example; metrics skip the NaN ones. Numbers by hand."""
    import tensorflow as tf

    from tfdistil.distillation import PerExampleScore
    from tfdistil.distillation.terms import LossInputs, ScoreMSE

    y = tf.constant([1.0, np.nan, 3.0, np.nan])
    teacher = tf.constant([[1.5], [2.0], [2.0], [0.0]])
    student = tf.constant([[1.0], [1.0], [4.0], [1.0]])
    (pair,) = PerExampleScore().logit_pairs({}, y, None, teacher, student)

    inputs = LossInputs({}, {}, [pair], [], [], None, None)
    gold = float(ScoreMSE("labels").compute_loss(inputs))
    soft = float(ScoreMSE("teacher").compute_loss(inputs))
    assert gold == pytest.approx(((1 - 1) ** 2 + (4 - 3) ** 2) / 4)  # 0.25
    assert soft == pytest.approx((0.5 ** 2 + 1 ** 2 + 2 ** 2 + 1 ** 2) / 4)  # 1.5625
    labels, weights, valid = PerExampleScore().metric_targets({}, y, None)
    assert np.asarray(labels).tolist() == [1.0, 0.0, 3.0, 0.0]
    assert np.asarray(weights).tolist() == np.asarray(valid).tolist() == [1.0, 0.0, 1.0, 0.0]


def test_distil_a_regression_teacher_on_augmented_pairs_with_cached_logits(shared_data, tmp_path):
    """`tfdistil distill --augment-copies 1 --cache-teacher-logits` on GLUE STS-B pairs: the copies
    augment_texts makes of the training pairs are added, the student trains on them (finite score
    terms) from cached teacher scores, and caching refuses the intermediate terms."""
    from test_regression import COMMON, head_lines, read_json, run_cli

    glue = shared_data / "glue" / "STS-B"
    train, dev = head_lines(glue / "train.tsv", tmp_path / "train.tsv", 41), head_lines(glue / "dev.tsv",
                                                                                       tmp_path / "dev.tsv", 21)
    data = ["--train", str(train), "--dev", str(dev), "--runs-dir", str(tmp_path)]
    code, _, err = run_cli(["finetune", *data, "--name", "teacher", "--epochs", "1", *COMMON])
    assert code == 0, err
    distil = ["distill", "--teacher", str(tmp_path / "teacher"), *data, "--student-layers", "1", "--epochs", "2",
              "--batch-size", "16", "--precision", "float32", "--verbose", "0", "--no-hard-labels-baseline",
              "--augment-copies", "1", "--cache-teacher-logits"]
    code, _, err = run_cli([*distil, "--name", "cosine"])
    assert code == 2 and "--cache-teacher-logits" in err and "hidden-cosine-weight" in err
    code, _, err = run_cli([*distil, "--name", "student", "--hidden-cosine-weight", "0"])
    assert code == 0, err
    report = read_json(tmp_path / "student" / "report.json")
    with open(train, encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    copies, _ = augment_texts([r[7] for r in rows], 1, text_pairs=[r[8] for r in rows], seed=0)
    assert report["augmented_examples"] == len(copies) > 30
    history = report["histories"]["student (distilled)"]
    assert len(history["soft_loss"]) == 2 and np.isfinite(history["soft_loss"] + history["hard_loss"]).all()
    assert read_json(tmp_path / "student" / "config.json")["cache_teacher_logits"] is True
