"""The CLI sub-commands on the user's own files, end to end in-process: `finetune` (preset from
scratch with a learned vocabulary, and a local Hugging Face folder) -> `distill --teacher` ->
`evaluate` -> `predict`, `--config` files, and the one-line user errors (exit code 2).

Tiny settings throughout (60 training sentences of the embedded sentiment data, bert_tiny
width with 2 layers, a 300-token vocabulary, 1-2 epochs). Accuracies and probabilities are
recounted here with numpy from the saved `.keras` files and a tokenizer built by hand from
the run's vocab.txt; nothing is taken from the code under test.
"""
import contextlib
import csv
import io
import json

import numpy as np
import pytest

import keras
import tensorflow as tf

from tfdistil import cli
from tfdistil.data import load_sentiment_dataset, make_classification_dataset, read_text_classification
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier
from tfdistil.text import WordPieceTokenizer, load_vocabulary

LABELS = ["negative", "positive"]
SEQ_LEN = 32
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COMMON = ["--precision", "float32", "--verbose", "0"]
FINETUNE_REPORT_KEYS = {"name", "task", "summary", "model", "preset", "dev_accuracy", "dev_examples", "train_examples",
                        "parameters", "num_layers", "label_names", "precision", "precision_reason", "models",
                        "histories", "wall_time_s"}
DISTILL_MODELS = ["teacher", "student (distilled)", "student (hard labels)"]


def run_cli(argv):
    """(exit code, stdout, stderr) of `tfdistil.cli.main(argv)`."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def write_files(folder):
    """train.csv (text,label; 60 sentences), dev.tsv (GLUE SST-2 style: label<TAB>sentence, 0/1
    labels are not used: the label strings), and a 40-line test.jsonl."""
    data = load_sentiment_dataset("train")
    rows = [(t, data.label_names[y]) for t, y in zip(data.texts, data.labels)]
    train, dev, test = rows[:60], rows[60:100], rows[100:140]
    with open(folder / "train.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(train)
    with open(folder / "dev.tsv", "w", encoding="utf-8") as f:
        f.write("label\tsentence\n")
        f.writelines(f"{label}\t{text}\n" for text, label in dev)
    with open(folder / "test.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps({"review": text, "sentiment": label}) + "\n" for text, label in test)
    return {"train": folder / "train.csv", "dev": folder / "dev.tsv", "test": folder / "test.jsonl",
            "dev_rows": dev, "test_rows": test}


def hand_tokenizer(run_dir):
    return WordPieceTokenizer(load_vocabulary(run_dir / "vocab.txt"), sequence_length=SEQ_LEN,
                              pad_to_sequence_length=False)


def recount_accuracy(model, run_dir, path, **columns):
    data = read_text_classification(path, label_names=LABELS, **columns)
    ds = make_classification_dataset(data, hand_tokenizer(run_dir), 16, bucket_boundaries=None, log_truncation=False)
    preds = np.concatenate([np.argmax(np.asarray(model(x, training=False)), -1) for x, _ in ds])
    return float(np.mean(preds == data.labels)), len(data)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    files = write_files(root)
    runs_dir = root / "runs"
    # The finetune run takes most settings from a YAML file; the command line overrides two.
    config = root / "finetune.yaml"
    config.write_text(
        "preset: bert_tiny\nnum_layers: 2\nvocabulary_size: 300\nsequence_length: 32\nepochs: 5\n"
        "batch_size: 16\nlearning_rate: 1e-3\nname: from_yaml\nprecision: float32\nverbose: 0\n",
        encoding="utf-8",
    )
    finetune = run_cli(["finetune", "--config", str(config), "--train", str(files["train"]), "--dev",
                        str(files["dev"]), "--runs-dir", str(runs_dir), "--name", "teacher", "--epochs", "2"])
    teacher_dir = runs_dir / "teacher"
    # The distill run reads a JSON config; --alpha on the command line overrides its alpha.
    distill_config = root / "distill.json"
    distill_config.write_text(json.dumps({"student_epochs": 1, "alpha": 0.9, "temperature": 3, "verbose": 0}),
                              encoding="utf-8")
    distill = run_cli(["distill", "--config", str(distill_config), "--teacher", str(teacher_dir), "--train",
                       str(files["train"]), "--dev", str(files["dev"]), "--student-layers", "1",
                       "--alpha", "0.25", "--runs-dir", str(runs_dir), "--precision", "float32"])
    return dict(root=root, files=files, runs_dir=runs_dir, teacher=teacher_dir, student=runs_dir / "teacher_distilled",
                finetune=finetune, distill=distill)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ----- finetune ------------------------------------------------------------------------


def test_finetune_writes_the_run(runs):
    code, out, err = runs["finetune"]
    assert code == 0, err
    assert "[tfdistil] precision: float32 (requested)" in out
    run = runs["teacher"]
    for name in ("config.json", "models/model.keras", "vocab.txt", "tokenizer.json", "label_names.json",
                 "report.json"):
        assert (run / name).is_file(), name
    assert read_json(run / "label_names.json") == LABELS
    settings = read_json(run / "tokenizer.json")
    assert settings["sequence_length"] == SEQ_LEN and settings["lowercase"] is True
    vocab = load_vocabulary(run / "vocab.txt")
    assert vocab[0] == "[PAD]" and len(vocab) <= 300
    assert (run / "logs" / "model" / "train").is_dir()  # TensorBoard
    assert not (run / "backup").exists()  # backups cleaned up after a finished run


def test_finetune_config_file_overridden_by_flags(runs):
    config = read_json(runs["teacher"] / "config.json")
    # From the YAML file ...
    # (its keys `num_layers`, `epochs`, `learning_rate` are finetune's names of the teacher's settings)
    assert (config["preset"], config["teacher_num_layers"], config["vocabulary_size"], config["batch_size"]) == (
        "bert_tiny", 2, 300, 16)
    assert config["teacher_learning_rate"] == pytest.approx(1e-3) and isinstance(config["teacher_learning_rate"], float)
    # ... except what the command line says.
    assert (config["name"], config["teacher_epochs"], config["task"]) == ("teacher", 2, "classification")
    assert config["resolved_precision"] == "float32"
    assert not (runs["runs_dir"] / "from_yaml").exists()


def test_finetune_report_matches_the_saved_model(runs):
    report = read_json(runs["teacher"] / "report.json")
    assert FINETUNE_REPORT_KEYS <= set(report)
    assert report["label_names"] == LABELS and report["preset"] == "bert_tiny"
    model = keras.models.load_model(runs["teacher"] / "models" / "model.keras")
    assert isinstance(model, TextClassifier) and isinstance(model.backbone, BertBackbone)
    assert model.backbone.num_layers == report["num_layers"] == 2
    assert model.backbone.vocabulary_size == len(load_vocabulary(runs["teacher"] / "vocab.txt"))
    assert report["parameters"] == model.count_params()
    accuracy, n = recount_accuracy(model, runs["teacher"], runs["files"]["dev"])
    assert (report["dev_examples"], report["train_examples"]) == (n, 60) == (40, 60)
    assert report["dev_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert 1 <= len(report["histories"]["model"]["val_accuracy"]) <= 2
    (row,) = report["models"]
    assert row["accuracy"] == report["dev_accuracy"] and row["parameters"] == report["parameters"]


# ----- distill --teacher ----------------------------------------------------------------


def test_distill_from_a_finetuned_teacher(runs):
    code, out, err = runs["distill"]
    assert code == 0, err
    run = runs["student"]
    report = read_json(run / "report.json")
    assert [r["model"] for r in report["models"]] == DISTILL_MODELS
    assert report["layer_map"] == [0]  # 2 -> 1 layer: one in every two, from the first
    assert report["dev_examples"] == 40
    assert report["teacher"]["num_layers"] == 2 and report["teacher"]["source"] == str(runs["teacher"])
    assert set(report["histories"]) == {"teacher", *DISTILL_MODELS}  # the teacher's from its run
    assert all(len(v) == 1 for v in report["histories"]["student (distilled)"].values())  # 1 epoch (JSON config)
    for plot in report["plots"]:
        assert (run / plot).read_bytes()[:8] == PNG_MAGIC
    assert (run / "report.md").read_text(encoding="utf-8").startswith("# Run `teacher_distilled`")
    config = read_json(run / "config.json")
    assert (config["alpha"], config["temperature"], config["student_epochs"]) == (0.25, 3.0, 1)
    assert load_vocabulary(run / "vocab.txt") == load_vocabulary(runs["teacher"] / "vocab.txt")
    assert read_json(run / "label_names.json") == LABELS

    teacher = keras.models.load_model(runs["teacher"] / "models" / "model.keras")
    rows = {r["model"]: r for r in report["models"]}
    assert rows["teacher"]["accuracy"] == pytest.approx(recount_accuracy(teacher, run, runs["files"]["dev"])[0])
    for label, name in (("student (distilled)", "student_distilled"), ("student (hard labels)", "student_hard_labels")):
        student = keras.models.load_model(run / "models" / f"{name}.keras")
        assert isinstance(student.backbone, DistilBertBackbone) and student.backbone.num_layers == 1
        assert rows[label]["parameters"] == student.count_params()
        assert rows[label]["accuracy"] == pytest.approx(recount_accuracy(student, run, runs["files"]["dev"])[0])


def test_distill_without_the_hard_label_baseline(runs):
    """--no-hard-labels-baseline: the same distilled student (same seed and settings as the
    fixture's run, which also trained the baseline), without the hard-label one."""
    run = runs["runs_dir"] / "no_baseline"
    code, out, err = run_cli(["distill", "--config", str(runs["root"] / "distill.json"), "--teacher",
                              str(runs["teacher"]), "--train", str(runs["files"]["train"]), "--dev",
                              str(runs["files"]["dev"]), "--student-layers", "1", "--alpha", "0.25",
                              "--runs-dir", str(runs["runs_dir"]), "--name", "no_baseline", "--precision", "float32",
                              "--no-hard-labels-baseline"])
    assert code == 0, err
    report = read_json(run / "report.json")
    assert [r["model"] for r in report["models"]] == DISTILL_MODELS[:2]
    assert "hard labels" not in report["summary"] and set(report["histories"]) == {"teacher", "student (distilled)"}
    assert report["why"] == ""  # no twin to compare with: no lesson, and no teacher pass over train for it
    assert read_json(runs["student"] / "report.json")["why"].startswith("Why distillation")
    assert not (run / "models" / "student_hard_labels.keras").exists()
    assert read_json(run / "config.json")["hard_labels_baseline"] is False
    alone = keras.models.load_model(run / "models" / "student_distilled.keras")
    with_baseline = keras.models.load_model(runs["student"] / "models" / "student_distilled.keras")
    for a, b in zip(alone.weights, with_baseline.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, err_msg=a.path)
    # Each student's row carries its training time; the teacher's (trained elsewhere) does not.
    for rows in (report["models"], read_json(runs["student"] / "report.json")["models"]):
        assert "train_time_s" not in rows[0]
        assert all(0 < r["train_time_s"] < report["wall_time_s"] + 600 for r in rows[1:])


def test_distill_on_augmented_text(runs):
    """--augment-copies 3: the distilled student also trains on perturbed copies of the 60
    training sentences, which the hard-label student never sees: its hard-label student is
    the fixture's, weight for weight; its distilled student is not."""
    run = runs["runs_dir"] / "augmented"
    code, out, err = run_cli(["distill", "--config", str(runs["root"] / "distill.json"), "--teacher",
                              str(runs["teacher"]), "--train", str(runs["files"]["train"]), "--dev",
                              str(runs["files"]["dev"]), "--student-layers", "1", "--alpha", "0.25",
                              "--runs-dir", str(runs["runs_dir"]), "--name", "augmented", "--precision", "float32",
                              "--augment-copies", "3"])
    assert code == 0, err
    report = read_json(run / "report.json")
    # 3 copies of 60 sentences, less the duplicates (short sentences, n-grams of one word).
    assert 100 < report["augmented_examples"] <= 180
    assert f"60 sentences + {report['augmented_examples']} augmented copies" in out
    assert read_json(run / "config.json")["augment_copies"] == 3
    assert read_json(runs["student"] / "report.json")["augmented_examples"] == 0

    def weights(folder, name):
        return [np.asarray(w) for w in keras.models.load_model(folder / "models" / f"{name}.keras").weights]

    for a, b in zip(weights(run, "student_hard_labels"), weights(runs["student"], "student_hard_labels")):
        np.testing.assert_allclose(a, b, atol=1e-6)
    differences = [np.abs(a - b).max() for a, b in zip(weights(run, "student_distilled"),
                                                      weights(runs["student"], "student_distilled"))]
    assert max(differences) > 1e-3


def test_every_distiller_knob_from_flags_and_config_files(runs, tmp_path):
    """--layer-map from a YAML list picks the teacher layer the student starts from (checked on the
    saved student's untrained twin); a narrower student (--student-hidden-dim/-num-heads/
    -intermediate-dim) starts from random weights and learns through the hidden-state MSE and
    attention terms, whose losses are logged."""
    files = runs["files"]
    config = tmp_path / "knobs.yaml"
    config.write_text("layer_map: [1]\nstudent_epochs: 1\nhidden_mse_weight: 0.5\nattention_weight: 0.25\n",
                      encoding="utf-8")
    base = ["distill", "--config", str(config), "--teacher", str(runs["teacher"]), "--train", str(files["train"]),
            "--dev", str(files["dev"]), "--student-layers", "1", "--runs-dir", str(tmp_path), "--no-hard-labels-baseline",
            *COMMON]
    code, out, err = run_cli([*base, "--name", "mapped", "--student-learning-rate", "0"])
    assert code == 0, err
    report = read_json(tmp_path / "mapped" / "report.json")
    recorded = read_json(tmp_path / "mapped" / "config.json")
    assert report["layer_map"] == [1] and recorded["layer_map"] == [1]
    assert (recorded["hidden_mse_weight"], recorded["attention_weight"]) == (0.5, 0.25)
    assert {"hidden_mse_loss", "attention_loss"} <= set(report["histories"]["student (distilled)"])
    # A zero learning rate leaves the student as initialised: teacher layer 1, not layer 0.
    teacher = keras.models.load_model(runs["teacher"] / "models" / "model.keras")
    student = keras.models.load_model(tmp_path / "mapped" / "models" / "student_distilled.keras")
    for t, s_ in zip(teacher.backbone.get_layer("transformer_layer_1").weights,
                     student.backbone.get_layer("transformer_layer_0").weights):
        np.testing.assert_allclose(np.asarray(s_), np.asarray(t), atol=1e-6)

    code, out, err = run_cli([*base, "--name", "narrow", "--student-hidden-dim", "64", "--student-num-heads", "1",
                              "--student-intermediate-dim", "96", "--hidden-cosine-weight", "0"])
    assert code == 0, err
    student = keras.models.load_model(tmp_path / "narrow" / "models" / "student_distilled.keras")
    assert (student.backbone.hidden_dim, student.backbone.num_heads, student.backbone.intermediate_dim) == (64, 1, 96)
    report = read_json(tmp_path / "narrow" / "report.json")
    assert report["layer_map"] is None and "random init" in out
    # The cosine term alone needs equal widths: a clear one-line error, not a traceback.
    user_error([*base, "--name", "bad", "--student-hidden-dim", "64", "--student-num-heads", "1",
                "--hidden-mse-weight", "0"],
               "cannot distil", "hidden_dim")


def test_augmentation_is_refused_for_ner(runs):
    code, out, err = run_cli(["distill", "--task", "ner", "--teacher", str(runs["teacher"]), "--train",
                              str(runs["files"]["train"]), "--dev", str(runs["files"]["dev"]),
                              "--augment-copies", "2"])
    assert code == 2 and "--augment-copies do not apply to --task ner" in err
    code, out, err = run_cli(["distill", "--augment-copies", "-1", "--runs-dir", str(runs["runs_dir"])])
    assert code == 2 and "--augment-copies must be >= 0, got -1" in err


# ----- evaluate -------------------------------------------------------------------------


def test_evaluate_on_a_jsonl_file(runs):
    code, out, err = run_cli(["evaluate", "--run", str(runs["student"]), "--model", "student_hard_labels",
                              "--data", str(runs["files"]["test"]), "--text-column", "review",
                              "--label-column", "sentiment"])
    assert code == 0, err
    printed = json.loads(out)
    written = read_json(runs["student"] / "evaluation_student_hard_labels_test.json")
    assert {k: v for k, v in printed.items() if k != "output"} == written
    assert written["model"] == "student_hard_labels" and written["examples"] == 40
    model = keras.models.load_model(runs["student"] / "models" / "student_hard_labels.keras")
    accuracy, _ = recount_accuracy(model, runs["student"], runs["files"]["test"], text_column="review",
                                   label_column="sentiment")
    assert written["accuracy"] == pytest.approx(accuracy, abs=1e-9)
    cm = np.array(written["confusion_matrix"])
    assert cm.shape == (2, 2) and cm.sum() == 40 and np.trace(cm) == written["correct"] == round(40 * accuracy)
    # Rows are true labels, columns predictions (as scikit-learn lays it out), recounted here.
    data = read_text_classification(runs["files"]["test"], label_names=LABELS, text_column="review",
                                    label_column="sentiment")
    ds = make_classification_dataset(data, hand_tokenizer(runs["student"]), 16, bucket_boundaries=None,
                                     log_truncation=False)
    preds = np.concatenate([np.argmax(np.asarray(model(x, training=False)), -1) for x, _ in ds])
    expected = np.zeros((2, 2), int)
    for t, p in zip(data.labels, preds):
        expected[t, p] += 1
    assert cm.tolist() == expected.tolist()
    assert open(written["confusion_matrix_png"], "rb").read(8) == PNG_MAGIC


def test_confusion_matrix_rows_are_true_labels(monkeypatch, tmp_path):
    """The evaluate result's matrix on labels and predictions chosen here, so that its transpose
    differs: rows true, columns predicted."""
    from tfdistil import evaluation
    from tfdistil.data import TextClassificationData
    from tfdistil.tasks import get_task

    y_true, y_pred = np.array([0, 0, 0, 1, 1]), np.array([1, 1, 0, 1, 1])  # 2 negatives called positive
    monkeypatch.setattr(evaluation, "predict_labels", lambda model, ds: (y_true, y_pred))
    data = TextClassificationData(texts=["a"] * 5, text_pairs=None, labels=list(y_true), label_names=LABELS,
                                  path=str(tmp_path / "d.tsv"))
    task = get_task("classification")
    monkeypatch.setattr(task, "dataset", lambda *args, **kwargs: None)
    result = task.evaluate("m", None, data, None, 8, str(tmp_path / "e.json"))
    assert result["confusion_matrix"] == [[1, 2], [0, 2]]
    assert result["correct"] == 3 and result["accuracy"] == pytest.approx(0.6)


def test_evaluate_default_model_and_output(runs, tmp_path):
    output = tmp_path / "eval.json"
    code, out, err = run_cli(["evaluate", "--run", str(runs["teacher"]), "--data", str(runs["files"]["dev"]),
                              "--output", str(output)])
    assert code == 0, err
    result = read_json(output)
    assert result["model"] == "model"
    assert result["accuracy"] == pytest.approx(read_json(runs["teacher"] / "report.json")["dev_accuracy"])
    assert (tmp_path / "eval_confusion_matrix.png").is_file()


# ----- predict --------------------------------------------------------------------------


def expected_predictions(run_dir, model_name, texts):
    model = keras.models.load_model(run_dir / "models" / f"{model_name}.keras")
    logits = np.asarray(model(hand_tokenizer(run_dir)(tf.constant(texts)), training=False), np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return [(LABELS[int(np.argmax(p))], float(np.max(p))) for p in probs]


def parse_lines(out):
    lines = out.splitlines()
    parsed = [line.split("\t", 2) for line in lines]
    assert all(len(p) == 3 for p in parsed), lines
    return [(label, float(prob), text) for label, prob, text in parsed]


def test_predict_texts_from_arguments(runs):
    texts = [text for text, _ in runs["files"]["test_rows"][:5]] + ["an odd one, with\ttab"]
    code, out, err = run_cli(["predict", "--run", str(runs["student"]), *texts])
    assert code == 0, err
    parsed = parse_lines(out)
    assert [t for _, _, t in parsed] == texts
    expected = expected_predictions(runs["student"], "student_distilled", texts)
    for (label, prob, _), (exp_label, exp_prob) in zip(parsed, expected):
        assert label in LABELS and label == exp_label
        assert 0.5 <= prob <= 1.0 and prob == pytest.approx(exp_prob, abs=1e-4)


def test_predict_texts_from_stdin(runs, monkeypatch):
    texts = [text for text, _ in runs["files"]["dev_rows"][:4]]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts[:2]) + "\n\n" + "\n".join(texts[2:]) + "\n"))
    code, out, err = run_cli(["predict", "--run", str(runs["teacher"]), "--model", "model"])
    assert code == 0, err
    parsed = parse_lines(out)
    # One output line per input line: the blank line too, so outputs line up with inputs.
    inputs = texts[:2] + [""] + texts[2:]
    assert [t for _, _, t in parsed] == inputs
    expected = expected_predictions(runs["teacher"], "model", inputs)
    assert [label for label, _, _ in parsed] == [label for label, _ in expected]


def test_predict_names_the_stdin_line_that_is_not_utf8(runs, monkeypatch):
    raw = "a fine film .\n".encode() + b"caf\xe9 au lait\n" + "fine .\n".encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8"))
    user_error(["predict", "--run", str(runs["teacher"])], "stdin line 2 is not valid UTF-8", "byte 4", "xe9")


def test_a_damaged_model_file_is_named(runs, tmp_path):
    import shutil

    run = tmp_path / "damaged"
    shutil.copytree(runs["teacher"], run)
    path = run / "models" / "model.keras"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    user_error(["evaluate", "--run", str(run), "--data", str(runs["files"]["dev"])], str(path), "damaged")
    user_error(["predict", "--run", str(run), "hello"], str(path), "damaged")
    user_error(["export", "--run", str(run), "--out", str(tmp_path / "out")], str(path), "damaged")


def test_a_failed_finetune_leaves_no_run_folder(runs, tmp_path):
    broken = tmp_path / "hf"
    broken.mkdir()
    (broken / "config.json").write_text("{}", encoding="utf-8")  # no model_type, no weights
    user_error(["finetune", "--hf", str(broken), "--train", str(runs["files"]["train"]), "--dev",
                str(runs["files"]["dev"]), "--runs-dir", str(tmp_path / "runs"), "--name", "failed", *COMMON],
               "cannot load the Hugging Face checkpoint")
    assert not (tmp_path / "runs" / "failed").exists()


# ----- a Hugging Face folder as the teacher -----------------------------------------------


def test_finetune_from_a_local_hugging_face_folder(runs, tmp_path):
    from tfdistil.convert import save_hf

    vocab = load_vocabulary(runs["teacher"] / "vocab.txt")
    backbone = BertBackbone(vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=32,
                            intermediate_dim=64, max_sequence_length=64)
    save_hf(backbone, WordPieceTokenizer(vocab, sequence_length=64), tmp_path / "hf")
    code, out, err = run_cli(["finetune", "--hf", str(tmp_path / "hf"), "--train", str(runs["files"]["train"]),
                              "--dev", str(runs["files"]["dev"]), "--epochs", "1", "--sequence-length", "32",
                              "--runs-dir", str(tmp_path / "runs"), "--name", "hf", *COMMON])
    assert code == 0, err
    report = read_json(tmp_path / "runs" / "hf" / "report.json")
    assert report["hf"] == str(tmp_path / "hf") and report["num_layers"] == 1
    model = keras.models.load_model(tmp_path / "runs" / "hf" / "models" / "model.keras")
    # The backbone came from the folder: its embedding table is the saved one.
    np.testing.assert_allclose(model.backbone.get_layer("token_embedding").get_weights()[0],
                               backbone.get_layer("token_embedding").get_weights()[0], atol=0.05)
    assert read_json(tmp_path / "runs" / "hf" / "tokenizer.json")["sequence_length"] == 32
    assert read_json(tmp_path / "runs" / "hf" / "config.json")["teacher_learning_rate"] == pytest.approx(5e-5)


# ----- help and user errors -------------------------------------------------------------


@pytest.mark.parametrize("command,flags", [
    ("finetune", ["--train", "--dev", "--hf", "--preset", "--vocabulary", "--text-column", "--text-pair-column",
                  "--label-column", "--epochs", "--batch-size", "--learning-rate", "--sequence-length",
                  "--precision", "--name", "--runs-dir", "--config"]),
    ("distill", ["--teacher", "--train", "--dev", "--student-layers", "--alpha", "--temperature",
                 "--hidden-cosine-weight", "--hidden-mse-weight", "--attention-weight", "--layer-map",
                 "--student-hidden-dim", "--student-num-heads", "--student-intermediate-dim", "--epochs", "--config"]),
    ("evaluate", ["--run", "--model", "--data"]),
    ("predict", ["--run", "--model", "TEXT"]),
])
def test_help_of_each_command(command, flags, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: tfdistil {command}")
    for flag in flags:
        assert flag in out, flag


def user_error(argv, *fragments):
    code, out, err = run_cli(argv)
    assert code == 2, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_error_missing_training_file(runs, tmp_path):
    missing = tmp_path / "nope.csv"
    user_error(["finetune", "--train", str(missing), "--dev", str(runs["files"]["dev"]), "--preset", "bert_tiny",
                "--runs-dir", str(tmp_path)], str(missing), "file not found")


def test_error_dev_file_with_an_unknown_label(runs, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\tsentence\npositive\tgood .\nneutral\tokay .\n", encoding="utf-8")
    user_error(["evaluate", "--run", str(runs["teacher"]), "--data", str(bad)], str(bad), "line 3", "'neutral'")


def test_error_missing_run_dirs(runs, tmp_path):
    missing = str(tmp_path / "no_run")
    user_error(["evaluate", "--run", missing, "--data", str(runs["files"]["dev"])], "run directory not found", missing)
    user_error(["predict", "--run", missing, "hello"], "run directory not found", missing)
    user_error(["distill", "--teacher", missing, "--train", str(runs["files"]["train"]), "--dev",
                str(runs["files"]["dev"]), "--runs-dir", str(tmp_path)], "run directory not found", missing)


def test_error_unknown_model(runs):
    user_error(["predict", "--run", str(runs["teacher"]), "--model", "nope", "x"], "'nope'", "models: ['model']")


def test_error_missing_required_arguments(runs, tmp_path):
    user_error(["finetune", "--preset", "bert_tiny", "--runs-dir", str(tmp_path)], "required", "--train, --dev")
    user_error(["distill", "--teacher", str(runs["teacher"]), "--runs-dir", str(tmp_path)], "--train, --dev")
    user_error(["evaluate", "--run", str(runs["teacher"])], "required", "--data")
    user_error(["finetune", "--train", str(runs["files"]["train"]), "--dev", str(runs["files"]["dev"]),
                "--runs-dir", str(tmp_path)], "--hf PATH or --preset NAME")


def test_error_config_files(runs, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 1\nlearning_rat: 0.1\nbogus: 2\n", encoding="utf-8")
    user_error(["finetune", "--config", str(bad)], str(bad), "unknown keys ['bogus', 'learning_rat']")
    missing = tmp_path / "missing.yaml"
    user_error(["distill", "--config", str(missing)], "config file not found", str(missing))
    wrong_type = tmp_path / "type.json"
    wrong_type.write_text('{"epochs": "many"}', encoding="utf-8")
    user_error(["finetune", "--config", str(wrong_type)], str(wrong_type), "epochs", "'many'")
    # Keys of the embedded default run are distill options too; an unknown one is still refused.
    default_keys = tmp_path / "default.yaml"
    default_keys.write_text("teacher_epochs: 1\nstudent_layer: 1\n", encoding="utf-8")
    user_error(["distill", "--config", str(default_keys)], "unknown keys ['student_layer']")
    not_a_bool = tmp_path / "bool.yaml"
    not_a_bool.write_text("hard_labels_baseline: sometimes\n", encoding="utf-8")
    user_error(["distill", "--config", str(not_a_bool)], str(not_a_bool), "hard_labels_baseline",
               "true or false", "'sometimes'")


def test_error_hf_folder_and_student_layers(runs, tmp_path):
    files = runs["files"]
    user_error(["finetune", "--hf", str(tmp_path / "no_hf"), "--train", str(files["train"]), "--dev",
                str(files["dev"]), "--runs-dir", str(tmp_path)], "Hugging Face folder not found")
    user_error(["distill", "--teacher", str(runs["teacher"]), "--train", str(files["train"]), "--dev",
                str(files["dev"]), "--student-layers", "3", "--runs-dir", str(tmp_path), *COMMON],
               "--student-layers 3", "2 layers")


def test_argparse_errors_still_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["finetune", "--epochs", "two"])
    assert info.value.code == 2
    assert "invalid int value: 'two'" in capsys.readouterr().err


def test_predict_sentence_pairs(tmp_path):
    """A run trained on pairs labels 'first<TAB>second' inputs, with the second text in segment 1
    (recomputed here with a hand-built tokenizer), and names the input that has no TAB."""
    data = load_sentiment_dataset("train")
    rows = [(a, b, data.label_names[y]) for a, b, y in zip(data.texts[:48], data.texts[48:96], data.labels[:48])]
    with open(tmp_path / "pairs.tsv", "w", encoding="utf-8") as f:
        f.write("premise\thypothesis\tlabel\n")
        f.writelines(f"{a}\t{b}\t{y}\n" for a, b, y in rows)
    code, _, err = run_cli(["finetune", "--train", str(tmp_path / "pairs.tsv"), "--dev", str(tmp_path / "pairs.tsv"),
                            "--text-column", "premise", "--text-pair-column", "hypothesis", "--preset", "bert_tiny",
                            "--num-layers", "1", "--vocabulary-size", "300", "--sequence-length", "32",
                            "--epochs", "1", "--batch-size", "16", "--runs-dir", str(tmp_path / "runs"),
                            "--name", "pairs", *COMMON])
    assert code == 0, err
    run_dir = tmp_path / "runs" / "pairs"
    pairs = [(a, b) for a, b, _ in rows[:3]]
    code, out, err = run_cli(["predict", "--run", str(run_dir), *(f"{a}\t{b}" for a, b in pairs)])
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [(a, b) for _, _, a, b in lines] == pairs
    model = keras.models.load_model(run_dir / "models" / "model.keras")
    tokenizer = hand_tokenizer(run_dir)
    features = tokenizer(tf.constant([a for a, _ in pairs]), tf.constant([b for _, b in pairs]))
    assert np.asarray(features["segment_ids"]).max() == 1  # the second text is in segment 1
    logits = np.asarray(model(features, training=False), np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    for (label, prob, _, _), p in zip(lines, probs):
        assert label == LABELS[int(np.argmax(p))]
        assert float(prob) == pytest.approx(float(np.max(p)), abs=1e-4)
    code, out, err = run_cli(["predict", "--run", str(run_dir), f"{pairs[0][0]}\t{pairs[0][1]}", "only one text"])
    assert code == 2 and out == ""
    assert "input 2" in err and "'only one text'" in err and "TAB" in err
