"""`tfdistil export` end to end in-process: a tiny run from `tfdistil finetune` (as in
tests/test_cli.py: embedded sentiment sentences, bert_tiny width, 1 layer, a learned
300-token vocabulary, 1 epoch) exported as a TF Serving SavedModel, a Hugging Face folder
(loaded by transformers/PyTorch) and a TFLite file, each compared with the run's Keras model.
"""
import json

import numpy as np
import pytest

import keras
import tensorflow as tf

from test_cli import COMMON, LABELS, SEQ_LEN, read_json, run_cli, user_error, write_files
from tfdistil.text import WordPieceTokenizer, load_vocabulary

TEXTS = ["a good film .", "dull and far too long , a waste of an evening .", "", "we liked it", "bad"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    files = write_files(root)
    code, out, err = run_cli(["finetune", "--train", str(files["train"]), "--dev", str(files["dev"]),
                              "--preset", "bert_tiny", "--num-layers", "1", "--vocabulary-size", "300",
                              "--sequence-length", str(SEQ_LEN), "--epochs", "1", "--batch-size", "16",
                              "--runs-dir", str(root / "runs"), "--name", "tiny", *COMMON])
    assert code == 0, err
    run_dir = root / "runs" / "tiny"
    model = keras.models.load_model(run_dir / "models" / "model.keras")
    return {"root": root, "dir": run_dir, "model": model}


def tokenizer_of(run_dir, pad=False):
    return WordPieceTokenizer(load_vocabulary(run_dir / "vocab.txt"), sequence_length=SEQ_LEN,
                              pad_to_sequence_length=pad)


def keras_logits(run, inputs):
    return np.asarray(run["model"]({k: tf.constant(v) for k, v in inputs.items()}, training=False), np.float64)


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ----- saved_model ----------------------------------------------------------------------


def test_export_saved_model(run):
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops before loading)

    out = run["root"] / "saved_models"
    code, stdout, err = run_cli(["export", "--run", str(run["dir"]), "--out", str(out), "--name", "sentiment"])
    assert code == 0, err
    version = out / "sentiment" / "1"
    assert (version / "saved_model.pb").is_file() and str(version) in stdout
    card = (version / "README.md").read_text(encoding="utf-8")
    dev_accuracy = read_json(run["dir"] / "report.json")["dev_accuracy"]
    assert "## Metrics" in card and f"dev_accuracy: {dev_accuracy}" in card

    loaded = tf.saved_model.load(str(version))
    result = loaded.signatures["serving_default"](text=tf.constant(TEXTS))
    inputs = {k: np.asarray(v) for k, v in tokenizer_of(run["dir"])(tf.constant(TEXTS)).items()}
    expected = softmax(keras_logits(run, inputs))
    np.testing.assert_allclose(result["probabilities"].numpy(), expected, atol=1e-5)
    names = [n.decode() for n in result["class_names"].numpy()]
    assert names == [LABELS[i] for i in expected.argmax(-1)]

    # The next export is version 2; an existing version is refused with a one-line error.
    code, _, err = run_cli(["export", "--run", str(run["dir"]), "--out", str(out), "--name", "sentiment"])
    assert code == 0, err
    assert sorted(p.name for p in (out / "sentiment").iterdir()) == ["1", "2"]
    user_error(["export", "--run", str(run["dir"]), "--out", str(out), "--name", "sentiment", "--version", "1"],
               "Version 1 already exists")


# ----- hf -------------------------------------------------------------------------------


def test_export_hf_loads_in_transformers(run):
    import torch
    from transformers import AutoModelForSequenceClassification

    folder = run["root"] / "hf_export"
    code, _, err = run_cli(["export", "--run", str(run["dir"]), "--format", "hf", "--out", str(folder)])
    assert code == 0, err
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    torch_model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    assert [torch_model.config.id2label[i] for i in range(2)] == LABELS

    inputs = {k: np.asarray(v) for k, v in tokenizer_of(run["dir"])(tf.constant(TEXTS)).items()}
    assert (inputs["padding_mask"] == 0).any()  # the batch has padding
    with torch.no_grad():
        logits = torch_model(
            input_ids=torch.from_numpy(inputs["token_ids"].astype(np.int64)),
            token_type_ids=torch.from_numpy(inputs["segment_ids"].astype(np.int64)),
            attention_mask=torch.from_numpy(inputs["padding_mask"].astype(np.int64)),
        ).logits.numpy()
    np.testing.assert_allclose(logits, keras_logits(run, inputs), atol=1e-4, rtol=0)


# ----- tflite ---------------------------------------------------------------------------


@pytest.mark.parametrize("quantize,atol", [("float32", 1e-4), ("int8", None)])
def test_export_tflite_runs_in_the_interpreter(run, quantize, atol):
    from tfdistil.export import TFLiteClassifier, tflite_op_names

    out = run["root"] / "tflite"
    code, stdout, err = run_cli(["export", "--run", str(run["dir"]), "--format", "tflite", "--out", str(out),
                                 "--name", f"tiny_{quantize}", "--quantize", quantize])
    assert code == 0, err
    path = out / f"tiny_{quantize}.tflite"
    assert path.is_file() and str(path) in stdout
    info = read_json(out / f"tiny_{quantize}.json")
    assert info["sequence_length"] == SEQ_LEN and info["label_names"] == LABELS and info["quantize"] == quantize
    assert load_vocabulary(out / info["vocabulary"]) == load_vocabulary(run["dir"] / "vocab.txt")
    assert not [op for op in tflite_op_names(path.read_bytes()) if op.startswith("Flex")]

    inputs = {k: np.asarray(v) for k, v in tokenizer_of(run["dir"], pad=True)(tf.constant(TEXTS)).items()}
    logits = TFLiteClassifier(path)(inputs)
    expected = keras_logits(run, inputs)
    if atol is not None:
        np.testing.assert_allclose(logits, expected, atol=atol, rtol=0)
    else:
        # int8 dynamic-range weights: the Keras logits up to the weights' quantization (8 bits
        # per output channel); measured 0.2% of the largest logit, asserted within 1%.
        assert logits.shape == expected.shape
        assert np.abs(logits - expected).max() <= 0.01 * np.abs(expected).max()


# ----- errors and help ------------------------------------------------------------------


def test_export_user_errors(run, tmp_path):
    missing = str(tmp_path / "no_run")
    user_error(["export", "--run", missing], "run directory not found", missing)
    user_error(["export"], "required", "--run")
    user_error(["export", "--run", str(run["dir"]), "--model", "nope"], "'nope'", "models: ['model']")
    user_error(["export", "--run", str(run["dir"]), "--quantize", "int8", "--out", str(tmp_path)],
               "--quantize int8 goes with --format tflite")
    user_error(["export", "--run", str(run["dir"]), "--format", "tflite", "--sequence-length", "999",
                "--out", str(tmp_path)], "max_sequence_length")
    assert not list(tmp_path.iterdir())  # nothing written by a refused export


def test_export_help(capsys):
    from tfdistil import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["export", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--run", "--model", "--format", "--out", "--name", "--version", "--quantize"):
        assert flag in out, flag
    assert json.dumps(sorted(cli.COMMANDS)) == json.dumps(sorted(cli.HANDLERS))


def test_model_card_of_a_distilled_student_names_its_teacher(tmp_path):
    from tfdistil.jobs.export import _model_card

    report = {
        "dev_examples": 500,
        "teacher": {"source": "runs/teacher", "parameters": 836610, "num_layers": 4},
        "layer_map": [0, 2],
        "models": [
            {"model": "teacher", "accuracy": 0.986},
            {"model": "student (distilled)", "accuracy": 0.956, "parameters": 439810},
        ],
    }
    (tmp_path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    card = _model_card(str(tmp_path), "student_distilled")
    assert card["metrics"] == {"dev_examples": 500, "accuracy": 0.956, "parameters": 439810}
    assert card["distilled from"] == (
        "runs/teacher (4 layers, 836,610 parameters), student layers initialised from teacher layers [0, 2]"
    )
    assert "distilled from" not in _model_card(str(tmp_path), "teacher")
