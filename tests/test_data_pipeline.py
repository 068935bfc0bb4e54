"""tf.data pipelines: tokenization in the pipeline, length buckets, seeded shuffling, NER label
alignment (by hand, and against Hugging Face's fast tokenizer `word_ids()` on real CoNLL)."""
import itertools
import logging

import numpy as np
import pytest
import tensorflow as tf

from tfdistil.data import (
    IGNORE_INDEX,
    TextClassificationData,
    TokenClassificationData,
    align_predictions,
    count_truncated,
    load_sentiment_dataset,
    make_classification_dataset,
    make_token_classification_dataset,
    read_conll,
    read_glue_tsv,
)
from tfdistil.text import WordPieceTokenizer
from oracles import align_labels

FEATURES = {"token_ids", "segment_ids", "padding_mask"}
BOUNDARIES = (16, 32, 64, 128)


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    return WordPieceTokenizer(minilm_dir / "vocab.txt", sequence_length=128, pad_to_sequence_length=False)


@pytest.fixture(scope="module")
def short_tokenizer(minilm_dir):
    return WordPieceTokenizer(minilm_dir / "vocab.txt", sequence_length=16, pad_to_sequence_length=True)


@pytest.fixture(scope="module")
def hf_tokenizer(minilm_dir):
    import transformers
    return transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))


@pytest.fixture(scope="module")
def sst2_dev(shared_data):
    return read_glue_tsv(shared_data / "sst2" / "dev.tsv")


@pytest.fixture(scope="module")
def conll_valid(shared_data):
    return read_conll(shared_data / "conll2003" / "valid.txt")


def indexed(data):
    """The same texts, with each example's index as its label (to follow examples through)."""
    n = len(data)
    return TextClassificationData(
        texts=data.texts, text_pairs=data.text_pairs, labels=np.arange(n, dtype=np.int32),
        label_names=[str(i) for i in range(n)], path=data.path,
    )


def subset(data, indices):
    return TokenClassificationData(
        sentences=[data.sentences[i] for i in indices], tags=[data.tags[i] for i in indices],
        label_names=data.label_names, path=data.path,
    )


def bucket_of(length):
    return next(i for i, b in enumerate(BOUNDARIES) if length <= b)


def epoch(ds):
    return [(({k: v.numpy() for k, v in f.items()}), y.numpy()) for f, y in ds]


# ---------------------------------------------------------------------------------------------
# Classification


def test_classification_batches_are_bucketed_padded_per_batch_and_complete(sst2_dev, tokenizer):
    data = indexed(sst2_dev)  # label = example index, to follow examples through
    reference = tokenizer(tf.constant(data.texts))
    ref_ids = reference["token_ids"].numpy()
    ref_len = reference["padding_mask"].numpy().sum(axis=1)
    ds = make_classification_dataset(data, tokenizer, batch_size=32, shuffle=True, log_truncation=False)
    spec_features, spec_labels = ds.element_spec
    assert set(spec_features) == FEATURES
    assert all(s.dtype == tf.int32 and s.shape.as_list() == [None, None] for s in spec_features.values())
    assert spec_labels.dtype == tf.int32 and spec_labels.shape.as_list() == [None]
    widths, seen = set(), []
    batches = epoch(ds)
    assert ds.cardinality().numpy() == len(batches)  # known, so Keras shows progress totals
    for features, labels in batches:
        batch, width = features["token_ids"].shape
        assert all(v.shape == (batch, width) and v.dtype == np.int32 for v in features.values())
        assert labels.shape == (batch,) and labels.dtype == np.int32
        lengths = features["padding_mask"].sum(axis=1)
        assert width == lengths.max()  # padded to this batch's longest, not further
        assert len({bucket_of(n) for n in lengths}) == 1  # one bucket a batch
        assert width <= BOUNDARIES[bucket_of(width)]
        mask = features["padding_mask"].astype(bool)
        assert (features["token_ids"][~mask] == 0).all() and (features["segment_ids"] == 0).all()
        for row, index in enumerate(labels):  # the tokenizer's own ids, unchanged
            n = ref_len[index]
            assert lengths[row] == n
            np.testing.assert_array_equal(features["token_ids"][row, :n], ref_ids[index, :n])
        widths.add(width)
        seen.extend(labels.tolist())
    assert sorted(seen) == list(range(len(data)))  # every example exactly once
    assert len(widths) > 3 and max(widths) > 32  # several buckets were used


def test_seeded_shuffle_is_reproducible(sst2_dev, tokenizer):
    data = indexed(sst2_dev)

    def order(ds):
        return [y.tolist() for _, y in epoch(ds)]

    a = make_classification_dataset(data, tokenizer, 32, shuffle=True, seed=3, log_truncation=False)
    b = make_classification_dataset(data, tokenizer, 32, shuffle=True, seed=3, log_truncation=False)
    c = make_classification_dataset(data, tokenizer, 32, shuffle=True, seed=4, log_truncation=False)
    a1, a2 = order(a), order(a)
    assert order(b) == a1  # same seed, same batches
    assert a1 != a2  # reshuffled each epoch
    assert order(c) != a1


def test_fixed_padding_gives_sequence_length(sst2_dev, tokenizer):
    data = indexed(sst2_dev)
    ds = make_classification_dataset(data, tokenizer, 100, bucket_boundaries=None, log_truncation=False)
    batches = epoch(ds)
    assert all(f["token_ids"].shape[1] == 128 for f, _ in batches)
    assert [len(y) for _, y in batches] == [100] * 8 + [72] and ds.cardinality().numpy() == 9
    assert np.concatenate([y for _, y in batches]).tolist() == list(range(len(data)))  # input order
    dropped = make_classification_dataset(
        sst2_dev, tokenizer, 100, bucket_boundaries=None, drop_remainder=True, log_truncation=False
    )
    assert dropped.element_spec[0]["token_ids"].shape.as_list() == [100, 128]
    assert len(epoch(dropped)) == 8 == dropped.cardinality().numpy()


def test_pad_to_bucket_boundary_and_drop_remainder(sst2_dev, tokenizer):
    ds = make_classification_dataset(
        sst2_dev, tokenizer, 32, pad_to_bucket_boundary=True, drop_remainder=True, log_truncation=False
    )
    batches = epoch(ds)
    assert ds.cardinality().numpy() == len(batches) > 0
    for features, labels in batches:
        width = features["token_ids"].shape[1]
        assert width in BOUNDARIES and len(labels) == 32
        assert bucket_of(features["padding_mask"].sum(axis=1).max()) == BOUNDARIES.index(width)


def test_text_pairs_get_segment_ids(tokenizer):
    data = TextClassificationData(
        texts=["a man sleeps", "the cat"], text_pairs=["a person rests", "a dog barks loudly"],
        labels=np.array([1, 0], np.int32), label_names=["no", "yes"], path="<pairs>",
    )
    reference = tokenizer(tf.constant(data.texts), tf.constant(data.text_pairs))
    (features, labels), = epoch(make_classification_dataset(data, tokenizer, 8, bucket_boundaries=None))
    assert labels.tolist() == [1, 0]
    for key in FEATURES:
        width = reference[key].shape[1]
        np.testing.assert_array_equal(features[key][:, :width], reference[key].numpy())
    assert features["segment_ids"][1].tolist()[:9] == [0, 0, 0, 0, 1, 1, 1, 1, 1]


def test_truncation_is_counted_and_logged(short_tokenizer, hf_tokenizer, caplog):
    data = load_sentiment_dataset("dev")
    hf_lengths = np.array([len(ids) for ids in hf_tokenizer(data.texts)["input_ids"]])
    expected = int(np.sum(hf_lengths > 16))
    assert 0 < expected < len(data)
    with caplog.at_level(logging.INFO, logger="tfdistil.data.pipeline"):
        ds = make_classification_dataset(data, short_tokenizer, 50)
    report = count_truncated(data, short_tokenizer, log=False)
    assert (report.num_truncated, report.num_examples, report.longest) == (expected, 500, hf_lengths.max())
    (record,) = [r for r in caplog.records if r.name == "tfdistil.data.pipeline"]
    assert record.levelno == logging.WARNING
    assert f"{expected} of 500 examples" in record.getMessage()
    assert "sentiment_dev.tsv" in record.getMessage() and "sequence_length=16" in record.getMessage()
    sep = short_tokenizer.token_to_id("[SEP]")
    full = 0
    for features, _ in epoch(ds):
        assert features["token_ids"].shape[1] <= 16
        lengths = features["padding_mask"].sum(axis=1)
        full += int(np.sum(lengths == 16))
        assert (features["token_ids"][np.arange(len(lengths)), lengths - 1] == sep).all()
    assert full == int(np.sum(hf_lengths >= 16))


def test_truncation_count_with_only_the_documented_interface(short_tokenizer):
    class Minimal:  # no `tokenize`: lengths come from whitespace words through tokenize_words
        sequence_length = short_tokenizer.sequence_length
        tokenize_words = staticmethod(short_tokenizer.tokenize_words)
        token_to_id = staticmethod(short_tokenizer.token_to_id)

    data = load_sentiment_dataset("dev")
    assert count_truncated(data, Minimal(), log=False) == count_truncated(data, short_tokenizer, log=False)


def test_bad_arguments(sst2_dev, conll_valid, tokenizer):
    with pytest.raises(ValueError, match="batch_size"):
        make_classification_dataset(sst2_dev, tokenizer, 0)
    with pytest.raises(ValueError, match="bucket_boundaries"):
        make_classification_dataset(sst2_dev, tokenizer, 8, bucket_boundaries=(32, 16))
    with pytest.raises(TypeError, match="TextClassificationData"):
        make_classification_dataset(conll_valid, tokenizer, 8)
    with pytest.raises(TypeError, match="TokenClassificationData"):
        make_token_classification_dataset(sst2_dev, tokenizer, 8)


# ---------------------------------------------------------------------------------------------
# Token classification: the alignment rule, by hand


@pytest.mark.parametrize(
    "counts, word_labels, sequence_length, labels, word_ids, kept",
    [
        # the docstring example: a two-piece word gets its label on the first piece only
        ([1, 2, 1], [3, 0, 5], 8, [-100, 3, 0, -100, 5, -100], [-1, 0, 1, 1, 2, -1], 3),
        # exact fit: 4 pieces + [CLS] + [SEP] = 6
        ([2, 2], [1, 2], 6, [-100, 1, -100, 2, -100, -100], [-1, 0, 0, 1, 1, -1], 2),
        # truncation inside a word: its first piece (and label) survives
        ([2, 3, 1], [1, 2, 3], 6, [-100, 1, -100, 2, -100, -100], [-1, 0, 0, 1, 1, -1], 2),
        # truncation at a word boundary: the last word is lost
        ([2, 2, 1], [1, 2, 3], 6, [-100, 1, -100, 2, -100, -100], [-1, 0, 0, 1, 1, -1], 2),
        # a word with no pieces has no position (HF word_ids never name it)
        ([1, 0, 1], [4, 5, 6], 10, [-100, 4, 6, -100], [-1, 0, 2, -1], 2),
        # nothing fits but the special tokens
        ([1], [7], 2, [-100, -100], [-1, -1], 0),
        ([], [], 5, [-100, -100], [-1, -1], 0),
        ([3], [0], 4, [-100, 0, -100, -100], [-1, 0, 0, -1], 1),
    ],
)
def test_align_labels_by_hand(counts, word_labels, sequence_length, labels, word_ids, kept):
    aligned = align_labels(counts, word_labels, sequence_length)
    assert aligned.labels.tolist() == labels and aligned.labels.dtype == np.int32
    assert aligned.word_ids.tolist() == word_ids
    assert aligned.num_words_kept == kept


def test_align_labels_exhaustively_small():
    # Every sentence of up to 4 words of 0-3 pieces, every sequence length 2-12.
    for n_words in range(5):
        for counts in itertools.product(range(4), repeat=n_words):
            word_labels = [10 + w for w in range(n_words)]
            for sequence_length in range(2, 13):
                a = align_labels(counts, word_labels, sequence_length)
                n = min(sum(counts), sequence_length - 2) + 2
                assert len(a.labels) == len(a.word_ids) == n
                assert a.labels[0] == a.labels[-1] == IGNORE_INDEX and a.word_ids[0] == a.word_ids[-1] == -1
                labelled = [lab for lab in a.labels if lab != IGNORE_INDEX]
                kept = [w for w in range(n_words) if counts[w] and sum(counts[:w]) < sequence_length - 2]
                assert labelled == [10 + w for w in kept] and a.num_words_kept == len(kept)
                # each word's pieces are contiguous, in order, and its label sits on the first
                inner = a.word_ids[1:-1].tolist()
                assert inner == sorted(inner)
                for pos, w in enumerate(inner, start=1):
                    first = pos == 1 or a.word_ids[pos - 1] != w
                    assert (a.labels[pos] == 10 + w) if first else (a.labels[pos] == IGNORE_INDEX)
    with pytest.raises(ValueError):
        align_labels([1, 2], [0], 8)


def test_one_ignore_index():
    import torch

    import tfdistil.data.augment
    import tfdistil.text.packing

    # Hugging Face's label for "no label" is torch's cross-entropy default.
    assert IGNORE_INDEX == torch.nn.CrossEntropyLoss().ignore_index == -100
    assert IGNORE_INDEX is tfdistil.text.packing.IGNORE_INDEX is tfdistil.data.augment.UNLABELLED


def test_align_predictions():
    labels = np.array([[-100, 3, -100, 5, -100, -100], [-100, 1, -100, -100, -100, -100]])
    preds = np.array([[9, 4, 9, 6, 9, 9], [9, 2, 9, 9, 9, 9]])
    out = align_predictions(preds, labels)
    assert [o.tolist() for o in out] == [[4, 6], [2]]
    assert [o.tolist() for o in align_predictions(labels, labels)] == [[3, 5], [1]]
    with pytest.raises(ValueError, match="shape"):
        align_predictions(preds[:, :3], labels)


# ---------------------------------------------------------------------------------------------
# Token classification: the pipeline


@pytest.mark.parametrize("sequence_length", [128, 16])
def test_token_labels_match_align_labels_and_hugging_face_word_ids(
    conll_valid, minilm_dir, hf_tokenizer, sequence_length
):
    tok = WordPieceTokenizer(minilm_dir / "vocab.txt", sequence_length=sequence_length)
    # The first 200 sentences and the 3 longest (longer than 128 pieces).
    full = hf_tokenizer(conll_valid.sentences, is_split_into_words=True)["input_ids"]
    full_lengths = [len(ids) for ids in full]
    longest = np.argsort(full_lengths)[-3:].tolist()
    data = subset(conll_valid, list(range(200)) + longest)
    ds = make_token_classification_dataset(data, tok, 64, bucket_boundaries=None, log_truncation=False)
    rows = [(f["token_ids"][i], f["padding_mask"][i], y[i]) for f, y in epoch(ds) for i in range(len(y))]
    assert len(rows) == len(data)
    pieces = tok.tokenize_words(tf.ragged.constant(data.sentences)).numpy()
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    encoded = hf_tokenizer(
        data.sentences, is_split_into_words=True, truncation=True, max_length=sequence_length
    )
    multi_piece = truncated = 0
    for i, ((ids, mask, labels), tags) in enumerate(zip(rows, data.tag_ids())):
        n = int(mask.sum())
        assert len(labels) == sequence_length and (labels[n:] == IGNORE_INDEX).all()
        # 1. The pure-Python rule, with the tokenizer's own word pieces.
        expected = align_labels([len(p) for p in pieces[i]], tags, sequence_length)
        np.testing.assert_array_equal(labels[:n], expected.labels)
        flat = np.concatenate([np.asarray(p) for p in pieces[i]])[: sequence_length - 2]
        np.testing.assert_array_equal(ids[:n], np.concatenate([[cls], flat, [sep]]))
        # 2. Hugging Face: a word's label on the first token of each word_ids() run.
        word_ids = encoded.word_ids(i)
        hf_labels = [
            IGNORE_INDEX if w is None or (pos > 0 and word_ids[pos - 1] == w) else tags[w]
            for pos, w in enumerate(word_ids)
        ]
        assert ids[:n].tolist() == encoded["input_ids"][i]
        assert labels[:n].tolist() == hf_labels, data.sentences[i]
        multi_piece += len(word_ids) - 2 > len({w for w in word_ids if w is not None})
        truncated += expected.num_words_kept < len(tags)
    assert multi_piece > 50 and truncated >= 3  # the check covered split words and truncation


def test_token_batches_bucketed_and_every_sentence_once(conll_valid, tokenizer):
    data = subset(conll_valid, range(600))
    ds = make_token_classification_dataset(data, tokenizer, 32, shuffle=True, seed=1, log_truncation=False)
    features_spec, labels_spec = ds.element_spec
    assert set(features_spec) == FEATURES and labels_spec.shape.as_list() == [None, None]
    gold, batches = [], epoch(ds)
    assert ds.cardinality().numpy() == len(batches)
    for features, labels in batches:
        batch, width = features["token_ids"].shape
        assert labels.shape == (batch, width) and labels.dtype == np.int32
        assert all(v.dtype == np.int32 for v in features.values())
        mask = features["padding_mask"].astype(bool)
        assert width == mask.sum(axis=1).max()
        assert len({bucket_of(n) for n in mask.sum(axis=1)}) == 1
        assert (labels[~mask] == IGNORE_INDEX).all() and (labels[:, 0] == IGNORE_INDEX).all()
        assert (features["segment_ids"] == 0).all()
        gold.extend(tuple(words.tolist()) for words in align_predictions(labels, labels))
    # No sentence here is truncated, so the first-piece labels give back every sentence's tags.
    assert sorted(gold) == sorted(tuple(t.tolist()) for t in data.tag_ids())


def test_token_fixed_padding_and_seeded_shuffle(conll_valid, tokenizer):
    data = subset(conll_valid, range(100))
    fixed = epoch(
        make_token_classification_dataset(data, tokenizer, 16, bucket_boundaries=None, log_truncation=False)
    )
    assert all(f["token_ids"].shape == (len(y), 128) == y.shape for f, y in fixed)

    def labels_of(seed):
        ds = make_token_classification_dataset(
            data, tokenizer, 16, shuffle=True, seed=seed, log_truncation=False
        )
        return [y.tolist() for _, y in epoch(ds)]

    first = labels_of(5)
    assert labels_of(5) == first != labels_of(6)


def test_word_with_no_pieces_gets_unk(tokenizer):
    # U+200B (zero width space) normalizes to nothing: it still gets one [UNK] piece and its tag.
    data = TokenClassificationData(
        sentences=[["Paris", "\u200b", "Texas"]], tags=[["B-LOC", "O", "B-LOC"]],
        label_names=["O", "B-LOC"], path="<zwsp>",
    )
    (features, labels), = epoch(make_token_classification_dataset(data, tokenizer, 4))
    n = features["padding_mask"][0].sum()
    unk = tokenizer.token_to_id("[UNK]")
    assert unk in features["token_ids"][0, :n].tolist()
    assert align_predictions(labels, labels)[0].tolist() == [1, 0, 1]


def test_token_truncation_report_against_hugging_face(conll_valid, tokenizer, hf_tokenizer, caplog):
    encoded = hf_tokenizer(conll_valid.sentences, is_split_into_words=True)
    lengths = np.array([len(ids) for ids in encoded["input_ids"]])
    lost = 0
    for i in np.flatnonzero(lengths > 128):
        kept = {w for w in encoded.word_ids(int(i))[:127] if w is not None}
        lost += len(conll_valid.sentences[i]) - len(kept)
    with caplog.at_level(logging.INFO, logger="tfdistil.data.pipeline"):
        report = count_truncated(conll_valid, tokenizer)
    assert report.num_truncated == int(np.sum(lengths > 128)) > 0
    assert report.longest == lengths.max() and report.num_words_dropped == lost
    assert f"{report.num_truncated} of 3250 sentences" in caplog.text and f"{lost} words" in caplog.text
