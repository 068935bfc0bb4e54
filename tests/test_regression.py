"""The `regression` task (GLUE STS-B) end to end, and the GLUE metrics of classification.

Tiny settings (bert_tiny width, 2 layers, a 300-token vocabulary, sequence length 32) on the first
rows of the real GLUE files in ../shared/data/glue. Every number the code under test reports is
recomputed here from the saved models, with a tokenizer built from the run's vocab.txt, the TSVs
parsed by hand, and scipy / scikit-learn / numpy; the Distiller's loss is recomputed in numpy from
its formula; export and HF round trips are checked against the Keras model and transformers.
"""
import contextlib
import io
import json

import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import f1_score, matthews_corrcoef

import keras
import tensorflow as tf

from conftest import serve_in_fresh_process
from tfdistil import cli
from tfdistil.text import WordPieceTokenizer, load_vocabulary

SEQ_LEN = 32
COMMON = ["--preset", "bert_tiny", "--num-layers", "2", "--vocabulary-size", "300", "--sequence-length",
          str(SEQ_LEN), "--batch-size", "16", "--precision", "float32", "--verbose", "0"]


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def head_lines(source, target, lines):
    """The first `lines` lines of a GLUE file, byte for byte (a BOM and literal quotes stay)."""
    with open(source, "rb") as f:
        target.write_bytes(b"".join(f.readline() for _ in range(lines)))
    return target


def glue_rows(path, text, pair, label, header=True):
    """(texts, pairs or None, labels as strings) of a GLUE TSV, split on tabs by hand."""
    with open(path, encoding="utf-8-sig") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    rows = rows[1:] if header else rows
    return ([r[text] for r in rows], None if pair is None else [r[pair] for r in rows], [r[label] for r in rows])


def hand_tokenizer(run_dir):
    return WordPieceTokenizer(load_vocabulary(run_dir / "vocab.txt"), sequence_length=SEQ_LEN,
                              pad_to_sequence_length=True)


def outputs(model, tokenizer, texts, pairs=None, batch=16):
    """The model's outputs on every text (or pair), in order, padded to the full sequence length."""
    out = []
    for i in range(0, len(texts), batch):
        segments = [tf.constant(texts[i:i + batch])]
        if pairs is not None:
            segments.append(tf.constant(pairs[i:i + batch]))
        out.append(np.asarray(model(tokenizer(*segments), training=False)))
    return np.concatenate(out)


def load(run_dir, name):
    import tfdistil.models  # noqa: F401 - registers the classes the file names

    return keras.models.load_model(run_dir / "models" / f"{name}.keras")


# ----------------------------------------------------------------------------- detection


def test_task_and_main_metric_come_from_the_layout(shared_data, tmp_path):
    from tfdistil.jobs.config import DataConfig
    from tfdistil.tasks import detect_task, get_task

    glue = shared_data / "glue"
    assert detect_task(glue / "STS-B" / "dev.tsv") == "regression"
    for task in ("MRPC", "RTE", "CoLA"):
        assert detect_task(glue / task / "dev.tsv") == "classification", task
    conll = tmp_path / "train.conll"
    conll.write_text("EU B-ORG\nrejects O\n", encoding="utf-8")
    assert detect_task(conll) == "classification"  # not a text layout: the reader of --task says what is wrong
    scores = tmp_path / "scores.csv"
    scores.write_text("text,label\na,0.5\n", encoding="utf-8")
    assert detect_task(scores, DataConfig()) == "classification"  # only a layout of scores says regression
    classification = get_task("classification")
    expected = {"MRPC": ("f1", ("val_f1", "max")), "CoLA": ("mcc", ("val_mcc", "max")),
                "RTE": ("accuracy", ("val_accuracy", "max"))}
    for task, (metric, monitor) in expected.items():
        spec = classification.for_data(classification.read(glue / task / "dev.tsv", DataConfig()))
        assert (spec.main_metric, spec.finetune_monitor, spec.distill_monitor) == (metric, monitor, monitor), task
    assert (classification.main_metric, classification.finetune_monitor) == ("accuracy", ("val_accuracy", "max"))
    from tfdistil.data import DataError

    with pytest.raises(DataError, match="read it as regression"):
        classification.read(glue / "STS-B" / "dev.tsv", DataConfig())
    # --task regression reads any file's label column as scores, and the pipeline keeps them float.
    regression = get_task("regression")
    data = regression.read(scores, DataConfig())
    assert data.labels.dtype == np.float32 and data.num_classes == 1 and data.label_names is None
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]
    tokenizer = WordPieceTokenizer(vocab, sequence_length=8)
    _, labels = next(iter(regression.dataset(data, tokenizer, 4, log_truncation=False)))
    assert labels.dtype == tf.float32 and labels.numpy().tolist() == [0.5]


# ----------------------------------------------------------------------------- STS-B runs


@pytest.fixture(scope="module")
def stsb(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("stsb")
    glue = shared_data / "glue" / "STS-B"
    train = head_lines(glue / "train.tsv", root / "train.tsv", 81)  # header + 80 pairs
    dev = head_lines(glue / "dev.tsv", root / "dev.tsv", 41)
    runs = root / "runs"
    # No --task: the STS-B layout says regression.
    finetune = run_cli(["finetune", "--train", str(train), "--dev", str(dev), "--epochs", "2",
                        "--learning-rate", "1e-3", "--runs-dir", str(runs), "--name", "teacher", *COMMON])
    distill = run_cli(["distill", "--teacher", str(runs / "teacher"), "--train", str(train), "--dev", str(dev),
                       "--student-layers", "1", "--epochs", "2", "--alpha", "0.3", "--no-hard-labels-baseline",
                       "--runs-dir", str(runs), "--name", "student", "--precision", "float32", "--verbose", "0"])
    texts, pairs, scores = glue_rows(dev, 7, 8, 9)
    return dict(root=root, train=train, dev=dev, teacher=runs / "teacher", student=runs / "student",
                finetune=finetune, distill=distill, texts=texts, pairs=pairs, gold=np.array(scores, float))


def test_finetune_detects_stsb_and_reports_correlations(stsb):
    code, out, err = stsb["finetune"]
    assert code == 0, err
    assert "GLUE STS-B (pairs: sentence1 / sentence2, score: score)" in out  # what was detected, in the log
    run = stsb["teacher"]
    config = read_json(run / "config.json")
    assert (config["task"], config["text_pairs"]) == ("regression", True)
    assert read_json(run / "label_names.json") is None
    report = read_json(run / "report.json")
    model = load(run, "model")
    assert type(model).__name__ == "TextRegressor"
    predicted = outputs(model, hand_tokenizer(run), stsb["texts"], stsb["pairs"])
    assert predicted.shape == (40, 1)
    predicted = predicted[:, 0]
    pearson = scipy.stats.pearsonr(predicted, stsb["gold"]).statistic
    spearman = scipy.stats.spearmanr(predicted, stsb["gold"]).statistic
    row = report["models"][0]
    assert row["pearson"] == pytest.approx(pearson, abs=1e-4)
    assert row["spearman"] == pytest.approx(spearman, abs=1e-4)
    assert row["mse"] == pytest.approx(np.mean((predicted - stsb["gold"]) ** 2), rel=1e-4)
    assert report["dev_pearson"] == row["pearson"] and report["label_names"] is None
    # Early stopping and the history see the whole-dev-set correlations each epoch.
    history = report["histories"]["model"]
    assert set(history) >= {"loss", "mse", "val_loss", "val_mse", "val_pearson", "val_spearman"}
    assert max(history["val_pearson"]) == pytest.approx(pearson, abs=1e-4)  # the best epoch's weights kept
    assert "Pearson" in (run / "report.md").read_text(encoding="utf-8")
    # ... and so does TensorBoard.
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(run / "logs" / "model" / "validation"),
                                             size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert {"epoch_pearson", "epoch_spearman"} <= set(tags)
    logged = [float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors("epoch_pearson")]
    np.testing.assert_allclose(logged, history["val_pearson"], atol=1e-6)


def test_distill_reports_the_students_correlations(stsb):
    code, out, err = stsb["distill"]
    assert code == 0, err
    run = stsb["student"]
    report = read_json(run / "report.json")
    assert [row["model"] for row in report["models"]] == ["teacher", "student (distilled)"]
    tokenizer = hand_tokenizer(run)
    for row, name in zip(report["models"], ("teacher", "student_distilled")):
        model = load(stsb["teacher"], "model") if name == "teacher" else load(run, name)
        predicted = outputs(model, tokenizer, stsb["texts"], stsb["pairs"])[:, 0]
        assert row["pearson"] == pytest.approx(scipy.stats.pearsonr(predicted, stsb["gold"]).statistic, abs=1e-4)
        assert row["spearman"] == pytest.approx(scipy.stats.spearmanr(predicted, stsb["gold"]).statistic, abs=1e-4)
    history = report["histories"]["student (distilled)"]
    # The score terms log as the classifiers' hard and soft terms; the correlations as metrics.
    assert {"hard_loss", "soft_loss", "hidden_cosine_loss", "val_pearson", "val_spearman"} <= set(history)
    student = load(run, "student_distilled")
    assert student.backbone.num_layers == 1 and type(student).__name__ == "TextRegressor"


def test_predict_prints_scores(stsb):
    pairs = list(zip(stsb["texts"][:3], stsb["pairs"][:3]))
    code, out, err = run_cli(["predict", "--run", str(stsb["teacher"]), *(f"{a}\t{b}" for a, b in pairs)])
    assert code == 0, err
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [(a, b) for _, a, b in lines] == pairs
    expected = outputs(load(stsb["teacher"], "model"), hand_tokenizer(stsb["teacher"]),
                       [a for a, _ in pairs], [b for _, b in pairs])[:, 0]
    np.testing.assert_allclose([float(score) for score, _, _ in lines], expected, atol=6e-5)
    code, _, err = run_cli(["predict", "--run", str(stsb["teacher"]), "one text, no pair"])
    assert code == 2 and "has no TAB" in err


def test_evaluate_gives_pearson_spearman_mse(stsb, tmp_path):
    output = tmp_path / "eval.json"
    code, out, err = run_cli(["evaluate", "--run", str(stsb["student"]), "--data", str(stsb["dev"]),
                              "--output", str(output)])
    assert code == 0, err
    result = read_json(output)
    predicted = outputs(load(stsb["student"], "student_distilled"), hand_tokenizer(stsb["student"]),
                        stsb["texts"], stsb["pairs"])[:, 0]
    assert result["examples"] == 40 and result["main_metric"] == "pearson"
    assert result["pearson"] == pytest.approx(scipy.stats.pearsonr(predicted, stsb["gold"]).statistic, abs=1e-4)
    assert result["spearman"] == pytest.approx(scipy.stats.spearmanr(predicted, stsb["gold"]).statistic, abs=1e-4)
    assert result["mse"] == pytest.approx(np.mean((predicted - stsb["gold"]) ** 2), rel=1e-4)


def test_export_serves_scores_in_a_fresh_process(stsb, tmp_path):
    out = tmp_path / "saved_models"
    code, _, err = run_cli(["export", "--run", str(stsb["student"]), "--out", str(out), "--name", "stsb"])
    assert code == 0, err
    texts, pairs = stsb["texts"][:5] + [""], stsb["pairs"][:5] + ["an empty first text"]
    calls = [dict(dir=str(out / "stsb" / "1"), signature="serving_default", inputs={"text": texts, "text_pair": pairs},
                  dtypes={"text": "string", "text_pair": "string"})]
    results = serve_in_fresh_process(calls, tmp_path, timeout=120)
    assert set(results[0]) == {"score"}
    expected = outputs(load(stsb["student"], "student_distilled"), hand_tokenizer(stsb["student"]), texts, pairs)
    np.testing.assert_allclose(results[0]["score"], expected[:, 0], atol=1e-5, rtol=0)
    assert "text_regression (sentence pairs)" in (out / "stsb" / "1" / "README.md").read_text(encoding="utf-8")

    # TFLite: token ids in, the scores out.
    code, _, err = run_cli(["export", "--run", str(stsb["student"]), "--format", "tflite", "--out",
                            str(tmp_path / "lite"), "--name", "stsb"])
    assert code == 0, err
    from tfdistil.export.tflite import TFLiteClassifier

    ids = hand_tokenizer(stsb["student"])(tf.constant(texts), tf.constant(pairs))
    lite = TFLiteClassifier(tmp_path / "lite" / "stsb.tflite")(ids)
    np.testing.assert_allclose(lite, expected, atol=1e-4, rtol=0)
    assert read_json(tmp_path / "lite" / "stsb.json")["label_names"] is None


# ----------------------------------------------------------------------------- the Distiller's score terms


def test_distiller_score_terms_match_numpy():
    """loss = alpha * mean((s - y)^2) + (1 - alpha) * mean((s - t)^2) + w_cos * mean over real tokens
    and mapped layers of (1 - cos), recomputed in numpy from the models' own outputs."""
    from tfdistil.distillation import Distiller, PerExampleScore, ScoreMSE
    from tfdistil.models import BertBackbone, DistilBertBackbone, TextRegressor

    keras.utils.set_random_seed(3)
    size = dict(vocabulary_size=50, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=10)
    teacher = TextRegressor(BertBackbone(num_layers=2, **size))
    student = TextRegressor(DistilBertBackbone(num_layers=1, **size))
    alpha, w_cos = 0.3, 0.7
    distiller = Distiller(teacher, student, alpha=alpha, hidden_cosine_weight=w_cos, layer_map=[1])
    assert isinstance(distiller.output_comparison, PerExampleScore)  # chosen for a TextRegressor
    assert [type(t).__name__ for t in distiller.terms] == ["ScoreMSE", "ScoreMSE", "HiddenCosine"]
    rng = np.random.default_rng(0)
    mask = (np.arange(10)[None, :] < np.array([10, 6, 3, 8])[:, None]).astype("int32")
    x = {"token_ids": rng.integers(1, 50, (4, 10)).astype("int32") * mask,
         "segment_ids": np.zeros((4, 10), "int32"), "padding_mask": mask}
    y = np.array([0.5, 4.0, 2.25, 3.0], "float32")
    t_out = teacher.intermediate_model(True, False)(x, training=False)
    s_out = student.intermediate_model(True, False)(x, training=False)
    terms = distiller.compute_loss_terms(x, tf.constant(y), None, t_out, s_out)
    t, s = np.asarray(t_out["logits"])[:, 0], np.asarray(s_out["logits"])[:, 0]
    gold_mse, teacher_mse = np.mean((s - y) ** 2), np.mean((s - t) ** 2)
    cos = []
    for t_i, s_i in ((0, 0), (2, 1)):  # embeddings, then student layer 0 with teacher layer 1
        a, b = np.asarray(t_out["hidden_states"][t_i]), np.asarray(s_out["hidden_states"][s_i])
        with np.errstate(invalid="ignore", divide="ignore"):  # padding may be all zeros: masked out below
            c = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        cos.append(np.sum(np.where(mask > 0, 1 - c, 0.0)) / mask.sum())
    np.testing.assert_allclose(float(terms["hard_loss"]), gold_mse, rtol=1e-5)
    np.testing.assert_allclose(float(terms["soft_loss"]), teacher_mse, rtol=1e-5)
    np.testing.assert_allclose(float(terms["hidden_cosine_loss"]), np.mean(cos), rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss"]), alpha * gold_mse + (1 - alpha) * teacher_mse + w_cos * np.mean(cos),
                               rtol=1e-5)
    # The config round-trips (the comparison and thus the score terms come back).
    again = Distiller.from_config(distiller.get_config())
    assert isinstance(again.output_comparison, PerExampleScore) and isinstance(again.terms[0], ScoreMSE)
    with pytest.raises(ValueError, match="PerExampleScore compares one-output"):
        from tfdistil.models import TextClassifier

        Distiller(TextClassifier(BertBackbone(num_layers=1, **size), 2),
                  TextClassifier(BertBackbone(num_layers=1, **size), 2), output_comparison=PerExampleScore())


# ----------------------------------------------------------------------------- Hugging Face


def _perturbed(model, seed):
    import torch

    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def _torch_scores(model, batch):
    import torch

    kwargs = {"input_ids": torch.tensor(batch["token_ids"], dtype=torch.long),
              "attention_mask": torch.tensor(batch["padding_mask"], dtype=torch.long)}
    if model.config.model_type == "bert":
        kwargs["token_type_ids"] = torch.tensor(batch["segment_ids"], dtype=torch.long)
    with torch.no_grad():
        return model(**kwargs).logits.numpy()


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_hf_regressor_round_trip(arch, tmp_path):
    import torch
    import transformers

    from tfdistil.convert import load_hf, save_hf
    from tfdistil.models import TextRegressor

    torch.set_num_threads(2)
    if arch == "bert":
        config = transformers.BertConfig(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=24, max_position_embeddings=32, num_labels=1,
                                         problem_type="regression")
        hf_class = transformers.BertForSequenceClassification
    else:
        config = transformers.DistilBertConfig(vocab_size=100, dim=16, n_layers=2, n_heads=2, hidden_dim=24,
                                               max_position_embeddings=32, num_labels=1, problem_type="regression")
        hf_class = transformers.DistilBertForSequenceClassification
    reference = _perturbed(hf_class(config), seed=1)
    reference.save_pretrained(tmp_path / "hf")
    rng = np.random.default_rng(0)
    mask = (np.arange(12)[None, :] < np.array([12, 7, 4])[:, None]).astype("int32")
    batch = {"token_ids": rng.integers(1, 100, (3, 12)).astype("int32") * mask,
             "segment_ids": ((np.arange(12)[None, :] >= 3) * mask).astype("int32"), "padding_mask": mask}
    expected = _torch_scores(reference, batch)  # (3, 1)

    model, _ = load_hf(tmp_path / "hf")  # the checkpoint's own head: a regressor
    assert isinstance(model, TextRegressor)
    np.testing.assert_allclose(np.asarray(model(batch, training=False)), expected, atol=1e-5, rtol=0)
    asked, _ = load_hf(tmp_path / "hf", task="text_regression")
    np.testing.assert_allclose(np.asarray(asked(batch, training=False)), expected, atol=1e-5, rtol=0)

    # Ours out: transformers reads a regressor and computes the same scores.
    save_hf(model, None, tmp_path / "ours")
    back = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "ours").eval()
    assert type(back) is hf_class
    assert (back.config.num_labels, back.config.problem_type) == (1, "regression")
    np.testing.assert_allclose(_torch_scores(back, batch), expected, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- GLUE classification metrics


@pytest.mark.parametrize("task,lines,text,pair,label,header,metric", [
    ("MRPC", 61, 3, 4, 0, True, "f1"),
    ("CoLA", 60, 3, None, 1, False, "mcc"),
])
def test_glue_classification_main_metric(task, lines, text, pair, label, header, metric, tmp_path, shared_data):
    glue = shared_data / "glue" / task
    train = head_lines(glue / "train.tsv", tmp_path / "train.tsv", lines)
    dev = head_lines(glue / "dev.tsv", tmp_path / "dev.tsv", lines)
    code, out, err = run_cli(["finetune", "--train", str(train), "--dev", str(dev), "--epochs", "1",
                              "--runs-dir", str(tmp_path / "runs"), "--name", task, *COMMON])
    assert code == 0, err
    assert f"GLUE {task}" in out and f"main metric {metric}" in out
    run = tmp_path / "runs" / task
    texts, pairs, labels = glue_rows(dev, text, pair, label, header=header)
    y_true = np.array([int(v) for v in labels])  # label names "0", "1": ids 0, 1
    assert read_json(run / "label_names.json") == ["0", "1"]
    logits = outputs(load(run, "model"), hand_tokenizer(run), texts, pairs)
    y_pred = np.argmax(logits, axis=-1)
    expected = {"accuracy": float(np.mean(y_true == y_pred)), "f1": f1_score(y_true, y_pred, zero_division=0),
                "mcc": matthews_corrcoef(y_true, y_pred)}
    report = read_json(run / "report.json")
    for key, value in expected.items():
        assert report["models"][0][key] == pytest.approx(value, abs=1e-9), key
    assert report[f"dev_{metric}"] == pytest.approx(expected[metric], abs=1e-9)
    # Early stopping monitored the main metric: it is in the history (and so in TensorBoard).
    assert f"val_{metric}" in report["histories"]["model"]
    assert report["histories"]["model"][f"val_{metric}"][-1] == pytest.approx(expected[metric], abs=1e-9)
    code, out, err = run_cli(["evaluate", "--run", str(run), "--data", str(dev), "--output", str(tmp_path / "e.json")])
    assert code == 0, err
    result = read_json(tmp_path / "e.json")
    assert result["main_metric"] == metric
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-9), key
