"""`tfdistil.export.export_tflite`: a tiny TextClassifier (BERT and DistilBERT) converted to
float32 / float16 / int8 flatbuffers and run in `tf.lite.Interpreter`, compared with Keras.

Inputs come from the real WordPiece tokenizer (padded to the fixed sequence length, so
rows have padding); the int8 agreement count uses 64 sentences drawn at random from the
embedded sentiment data that the tiny model was not trained on.
"""
import collections
import json
import re

import numpy as np
import pytest

import keras
import tensorflow as tf

from tfdistil.data import generate_sentiment_dataset, sentiment
from tfdistil.export import TFLiteClassifier, export_tflite, tflite_op_names
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier
from tfdistil.text import WordPieceTokenizer

SEQ_LEN = 16
TRAIN_EXAMPLES = 1024
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SENTENCES = ["a good film .", "dull , dull , dull and far too long to sit through without a nap .",
             "", "the best of the year", "bad"]


def sentences():
    """English sentences written by the embedded data's generator: the five-rule set the shipped
    files were made of before issue 27 (3,000 sentences, the labels unused here)."""
    rows = generate_sentiment_dataset(n_train=3000, label_noise=0.0, templates=sentiment.HARDER_TEMPLATES)["train"]
    return [row.sentence for row in rows]


def tiny_vocabulary():
    """The specials, punctuation and the 300 most frequent words of the embedded training text."""
    counts = collections.Counter()
    for text in sentences()[:TRAIN_EXAMPLES]:
        counts.update(re.findall(r"\w+", text.lower()))
    return SPECIALS + list(".,!?'-") + [w for w, _ in counts.most_common(300)]


def subject_label(text):
    """A 3-class task a tiny model learns in seconds (the sentiment labels take far longer):
    0 if the sentence says "i", 1 if "we", 2 otherwise."""
    words = set(re.findall(r"\w+", text.lower()))
    return 0 if "i" in words else 1 if "we" in words else 2


def tiny_classifier(backbone_class, tokenizer, seed=0):
    """A tiny classifier trained briefly: a random model gives nearly the same logits for every
    input (its pooled output hardly depends on the tokens), so int8 agreement would mean nothing."""
    keras.utils.set_random_seed(seed)
    backbone = backbone_class(vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=2,
                              hidden_dim=32, intermediate_dim=64, max_sequence_length=32)
    model = TextClassifier(backbone, num_classes=3)
    texts = sentences()[:TRAIN_EXAMPLES]
    inputs = {k: np.asarray(v) for k, v in tokenizer(tf.constant(texts)).items()}
    model.compile(optimizer=keras.optimizers.Adam(5e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(inputs, np.array([subject_label(t) for t in texts]), batch_size=32, epochs=4, verbose=0)
    return model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    vocabulary = tiny_vocabulary()
    tokenizer = WordPieceTokenizer(vocabulary, sequence_length=SEQ_LEN, pad_to_sequence_length=True)
    folder = tmp_path_factory.mktemp("tflite")
    result = {"tokenizer": tokenizer, "vocabulary": vocabulary, "models": {}, "files": {}}
    for backbone_class in (BertBackbone, DistilBertBackbone):
        model = tiny_classifier(backbone_class, tokenizer)
        key = backbone_class.__name__
        result["models"][key] = model
        for quantize in ("float32", "float16", "int8"):
            result["files"][key, quantize] = export_tflite(model, folder / f"{key}_{quantize}.tflite",
                                                           quantize=quantize, sequence_length=SEQ_LEN)
    return result


def tokenized(setup):
    inputs = setup["tokenizer"](tf.constant(SENTENCES))
    return {k: np.asarray(v) for k, v in inputs.items()}


BACKBONES = ["BertBackbone", "DistilBertBackbone"]


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("quantize,atol", [("float32", 1e-4), ("float16", 1e-2)])
def test_logits_match_keras_on_a_padded_batch(setup, backbone, quantize, atol):
    inputs = tokenized(setup)
    assert inputs["token_ids"].shape == (len(SENTENCES), SEQ_LEN)
    assert (inputs["padding_mask"] == 0).any() and (inputs["padding_mask"] == 1).all(axis=1).any()
    expected = np.asarray(setup["models"][backbone](inputs, training=False))
    runner = TFLiteClassifier(setup["files"][backbone, quantize])
    logits = runner(inputs)
    assert logits.shape == (len(SENTENCES), 3) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, expected, atol=atol, rtol=0)
    # Batch axis is dynamic: one row at a time gives the same numbers.
    one = runner({k: v[1:2] for k, v in inputs.items()})
    np.testing.assert_allclose(one, logits[1:2], atol=1e-5, rtol=0)


def random_sentences(setup, n, seed=0):
    """`n` tokenized sentences drawn at random from the embedded data the model was not trained on.
    (Random token ids are out of distribution: a trained model gives them all one class.)"""
    texts = sentences()[TRAIN_EXAMPLES:]
    picked = np.random.default_rng(seed).choice(len(texts), size=n, replace=False)
    picked = [texts[i] for i in picked]
    inputs = {k: np.asarray(v) for k, v in setup["tokenizer"](tf.constant(picked)).items()}
    return {**inputs, "texts": picked}


@pytest.mark.parametrize("backbone", BACKBONES)
def test_int8_predictions_agree_with_keras(setup, backbone):
    inputs = random_sentences(setup, 64)
    ids = {k: inputs[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    expected = np.argmax(np.asarray(setup["models"][backbone](ids, training=False)), -1)
    predicted = np.argmax(TFLiteClassifier(setup["files"][backbone, "int8"])(ids), -1)
    agreement = float(np.mean(predicted == expected))
    print(f"int8 argmax agreement with Keras ({backbone}, 64 random sentences): {agreement:.2%}")
    assert agreement >= 0.9
    assert len(set(expected.tolist())) == 3  # not a constant classifier, so agreement means something
    truth = [subject_label(t) for t in inputs.pop("texts")]
    assert np.mean(expected == truth) >= 0.8  # and it learned the task


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("quantize", ["float32", "float16", "int8"])
def test_only_builtin_ops(setup, backbone, quantize, capsys):
    content = setup["files"][backbone, quantize].read_bytes()
    ops = tflite_op_names(content)
    assert "FULLY_CONNECTED" in ops or "BATCH_MATMUL" in ops
    assert not [op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE")], ops
    # TFLite's own analyzer (it prints) reads the same builtin ops: none Flex, none missing.
    tf.lite.experimental.Analyzer.analyze(model_content=content, gpu_compatibility=False)
    listing = capsys.readouterr().out
    assert "Flex" not in listing and "CUSTOM" not in listing, listing[-2000:]
    assert [op for op in ops if op not in listing] == [], listing[-2000:]


def test_analyzer_lists_no_flex_ops(setup, capsys):
    tf.lite.experimental.Analyzer.analyze(model_content=setup["files"]["BertBackbone", "int8"].read_bytes())
    out = capsys.readouterr().out
    assert "Subgraph#0" in out and "Flex" not in out


@pytest.mark.parametrize("backbone", BACKBONES)
def test_quantized_files_are_smaller(setup, backbone):
    sizes = {q: setup["files"][backbone, q].stat().st_size for q in ("float32", "float16", "int8")}
    assert sizes["int8"] < sizes["float16"] < sizes["float32"], sizes


def test_signature_inputs_and_outputs(setup):
    interpreter = TFLiteClassifier(setup["files"]["BertBackbone", "float32"]).interpreter
    signature = interpreter.get_signature_list()["serving_default"]
    assert sorted(signature["inputs"]) == ["padding_mask", "segment_ids", "token_ids"]
    assert signature["outputs"] == ["logits"]
    for detail in interpreter.get_input_details():
        assert detail["dtype"] == np.int32 and list(detail["shape_signature"]) == [-1, SEQ_LEN]


def test_wrong_sequence_length_is_refused(setup):
    runner = TFLiteClassifier(setup["files"]["BertBackbone", "float32"])
    inputs = {k: v[:, :8] for k, v in tokenized(setup).items()}
    with pytest.raises(ValueError, match="sequence_length=16"):
        runner(inputs)


def test_bad_arguments(setup, tmp_path):
    model = setup["models"]["BertBackbone"]
    with pytest.raises(ValueError, match="'int4'"):
        export_tflite(model, tmp_path / "a.tflite", quantize="int4")
    with pytest.raises(ValueError, match="max_sequence_length 32, got 64"):
        export_tflite(model, tmp_path / "a.tflite", sequence_length=64)
    with pytest.raises(ValueError, match="TextClassifier or TextRegressor; got BertBackbone"):
        export_tflite(model.backbone, tmp_path / "a.tflite")
    assert not list(tmp_path.iterdir())  # nothing written


def test_metadata_free_file_is_json_independent(setup):
    # The flatbuffer alone carries the shapes a client needs (no sidecar required to run it).
    runner = TFLiteClassifier(setup["files"]["DistilBertBackbone", "float32"].read_bytes())
    assert runner.sequence_length == SEQ_LEN
    json.dumps({"sequence_length": runner.sequence_length})


def test_a_model_trained_under_mixed_bfloat16_exports_in_float32(tmp_path):
    """TFLite has no bfloat16 kernels: a classifier built and trained under mixed_bfloat16 (the
    automatic policy on this CPU) exports from a float32 copy of its weights. The reference is
    the same architecture built here under float32 with those weights."""
    vocab = tiny_vocabulary()
    tokenizer = WordPieceTokenizer(vocab, sequence_length=SEQ_LEN, pad_to_sequence_length=True)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = tiny_classifier(DistilBertBackbone, tokenizer)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.backbone.dtype_policy.name == "mixed_bfloat16"
    path = export_tflite(model, tmp_path / "bf16.tflite", sequence_length=SEQ_LEN)
    backbone = DistilBertBackbone(vocabulary_size=len(vocab), num_layers=2, num_heads=2, hidden_dim=32,
                                  intermediate_dim=64, max_sequence_length=32, dtype="float32")
    reference = TextClassifier(backbone, num_classes=3)
    reference.set_weights(model.get_weights())
    inputs = {k: np.asarray(v) for k, v in tokenizer(tf.constant(SENTENCES)).items()}
    want = np.asarray(reference(inputs, training=False))
    got = TFLiteClassifier(str(path))(inputs)
    np.testing.assert_allclose(got, want, atol=1e-4)
    # And the bfloat16 model itself is further away than that: the export did not run in bf16.
    assert np.abs(np.asarray(model(inputs, training=False), np.float32) - want).max() > 1e-4
