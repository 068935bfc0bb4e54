"""Property test: an exported SavedModel's signatures give what the Keras model gives, on
generated strings (empty ones, whitespace-only ones, any Unicode, invalid UTF-8 bytes, vocabulary
words), in batches of 0, 1 and more.

One tiny classifier (sentence pairs) and one tiny tagger are exported once for the module and
loaded with `tf.saved_model.load`, as a Python client of the export would; the reference is the
Keras model called on our tokenizer's packing (classifier), or on each text's words split as
`str.split` splits them (tagger: what `predict` and the CoNLL reader call a word). Bounded: a
fixed number of derandomized examples each.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from test_export import LABELS, TAGS, VOCAB, expected_probabilities, expected_tags, export_random, randomize, \
    tiny_bert, tiny_distilbert
from tfdistil.models import TextClassifier, TokenClassifier
from tfdistil.text import WordPieceTokenizer

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SEQ = 8

WORDS = st.sampled_from(VOCAB[5:] + ["[MASK]", "[UNK]", "Good", "FILM", "cafés"])
SPACES = st.sampled_from([" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\x0b", "\x1c", "\x85"])
TEXT = st.one_of(
    st.just(""),
    SPACES,
    st.text(st.characters(exclude_categories=["Cs"]), max_size=10),
    st.lists(st.tuples(WORDS, SPACES), max_size=12).map(lambda parts: "".join(w + s for w, s in parts)),
)
# Strings on the wire are bytes: invalid UTF-8 too (it reads as U+FFFD, then removed).
STRING = st.one_of(TEXT.map(lambda t: t.encode("utf-8")), st.binary(max_size=8))
BATCHES = st.one_of(st.just([]), st.lists(STRING, min_size=1, max_size=1), st.lists(STRING, min_size=2, max_size=6))


class Exported:
    """The Keras models, the tokenizer, and their loaded exports (a short repr for reports)."""

    def __init__(self, root):
        self.tokenizer = WordPieceTokenizer(VOCAB, sequence_length=SEQ)
        keras.utils.set_random_seed(0)
        self.classifier = randomize(TextClassifier(tiny_bert(), num_classes=3), 2)
        self.tagger = randomize(TokenClassifier(tiny_distilbert(), num_classes=4), 3)
        self.served_classifier = tf.saved_model.load(str(export_random(
            self.classifier, self.tokenizer, root / "classifier", label_names=LABELS, pair=True)))
        self.served_tagger = tf.saved_model.load(str(export_random(
            self.tagger, self.tokenizer, root / "tagger", label_names=TAGS)))

    def __repr__(self):
        return "<exported tiny classifier and tagger>"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return Exported(tmp_path_factory.mktemp("saved_models"))


def strings(batch):
    return tf.constant(batch, dtype=tf.string, shape=[len(batch)])


PAIRED = BATCHES.flatmap(lambda texts: st.tuples(st.just(texts), st.lists(STRING, min_size=len(texts),
                                                                         max_size=len(texts))))


@SETTINGS
@example(batch=([], []))  # TF Serving clients send empty batches
@example(batch=([b""], [b""]))
@given(batch=PAIRED)
def test_classifier_signatures_match_keras(exported, batch):
    texts, pairs = batch
    served = exported.served_classifier.signatures["serving_default"](text=strings(texts), text_pair=strings(pairs))
    assert served["probabilities"].shape == (len(texts), len(LABELS))
    assert served["class_ids"].shape == served["class_names"].shape == (len(texts),)
    if not texts:
        return
    expected = expected_probabilities(exported.classifier, exported.tokenizer, texts, pairs)
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(served["class_ids"].numpy(), np.argmax(expected, axis=-1))
    assert [n.decode() for n in served["class_names"].numpy()] == [LABELS[i] for i in np.argmax(expected, -1)]
    # The `logits` signature on the packing of the `tokenize` signature: the Keras logits.
    packed = exported.served_classifier.signatures["tokenize"](text=strings(texts), text_pair=strings(pairs))
    reference = exported.tokenizer(strings(texts), strings(pairs))
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(packed[key].numpy(), reference[key].numpy())
    logits = exported.served_classifier.signatures["logits"](**packed)["logits"].numpy()
    np.testing.assert_allclose(logits, exported.classifier(reference, training=False).numpy(), atol=1e-5, rtol=0)


@SETTINGS
@example(texts=[])
@example(texts=[b""])
@given(texts=BATCHES)
def test_tagger_signature_matches_keras_on_str_split_words(exported, texts):
    served = exported.served_tagger.signatures["serving_default"](text=strings(texts))
    if not texts:
        assert served["num_words"].shape == (0,) and served["tags"].shape[0] == 0
        return
    decoded = [t.decode("utf-8", errors="replace") for t in texts]
    words, tags, _ = expected_tags(exported.tagger, exported.tokenizer, decoded)
    assert served["num_words"].numpy().tolist() == [len(w) for w in words]
    width = max(len(w) for w in words)
    got_words = [[w.decode("utf-8", errors="replace") for w in row] for row in served["words"].numpy()]
    assert got_words == [w + [""] * (width - len(w)) for w in words]
    got_tags = [[t.decode() for t in row] for row in served["tags"].numpy()]
    assert got_tags == [t + [""] * (width - len(t)) for t in tags]
