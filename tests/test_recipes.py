"""The embedded default job end to end through the CLI (report, plots, saved models, config,
vocabulary, TensorBoard logs read back with TensorBoard's reader), the CLI's help, and the
report/evaluation helpers against hand-written values.

Golden values are written out or computed here (parameter counts from the architecture,
plot sizes from figsize x dpi, accuracies counted with numpy); none comes from the code
under test.
"""
import contextlib
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import keras
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from tfdistil import cli, evaluation, report
from tfdistil.tasks.classification import MODEL_COLUMNS
from tfdistil.data import load_sentiment_dataset, make_classification_dataset
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier
from tfdistil.text import WordPieceTokenizer, load_vocabulary

RUN_NAME = "t"
MODEL_NAMES = ["teacher", "student (distilled)", "student (hard labels)"]
LOG_NAMES = ["teacher", "student_distilled", "student_hard_labels"]
SAVED_MODELS = ["teacher.keras", "student_distilled.keras", "student_hard_labels.keras"]
ROW_KEYS = {"model", "accuracy", "f1", "mcc", "parameters", "size_mb", "latency_ms_batch1", "latency_ms_batch32",
            "speedup_batch1", "speedup_batch32"}
ALL_FLAGS = ["--name", "--runs-dir", "--precision", "--seed", "--vocabulary-size", "--sequence-length",
             "--teacher-preset", "--teacher-num-layers", "--teacher-epochs", "--student-epochs", "--batch-size",
             "--teacher-learning-rate", "--student-learning-rate", "--alpha", "--temperature",
             "--hidden-cosine-weight", "--patience", "--verbose"]
# The tiny run: bert_tiny width (hidden 128, 2 heads, FFN 512), 2 teacher layers -> 1 student layer.
HIDDEN, INTERMEDIATE, SEQ_LEN, NUM_CLASSES = 128, 512, 32, 2
# The embedded default's student: a quarter of the width (2 heads, FFN 256), from random weights.
STUDENT_HIDDEN, STUDENT_INTERMEDIATE = 64, 256
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUN_ARGS = ["distill", "--name", RUN_NAME, "--teacher-epochs", "1", "--student-epochs", "1",
            "--teacher-num-layers", "2", "--vocabulary-size", "300", "--precision", "float32", "--verbose", "0"]


def read_tensorboard_scalars(log_dir):
    """{tag: [(step, value), ...]} read with TensorBoard's own event reader (TF2 summaries
    are tensors; size_guidance 0 keeps every event)."""
    acc = event_accumulator.EventAccumulator(str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return {
        tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
        for tag in acc.Tags()["tensors"]
    }


# ----- the CLI end to end ---------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny `tfdistil distill` run (~25 s on 2 cores) shared by the tests below."""
    runs_dir = tmp_path_factory.mktemp("runs")
    argv = RUN_ARGS + ["--runs-dir", str(runs_dir)]
    previous_policy = keras.config.dtype_policy()
    # A policy set by the caller (say in a notebook) that the run should hand back.
    keras.config.set_dtype_policy("mixed_bfloat16")
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            code = cli.main(argv)
        policy_after = keras.config.dtype_policy().name
    finally:
        keras.config.set_dtype_policy(previous_policy)
    run_dir = runs_dir / RUN_NAME
    with open(run_dir / "report.json", encoding="utf-8") as f:
        report_json = json.load(f)
    return dict(code=code, dir=run_dir, report=report_json, stdout=stdout.getvalue(), policy_after=policy_after)


@pytest.fixture(scope="module")
def reloaded(run):
    return {name: keras.models.load_model(run["dir"] / "models" / name) for name in SAVED_MODELS}


def layer_params(h, i):
    # qkv (3h^2 + 3h), attention output (h^2 + h), 2 LayerNorms (4h), FFN (2hi + i + h).
    return 4 * h * h + 4 * h + 4 * h + 2 * h * i + i + h


def bert_classifier_params(v, layers, h=HIDDEN, i=INTERMEDIATE, p=SEQ_LEN, c=NUM_CLASSES):
    # token, position, 2 segment embeddings, embedding LayerNorm; layers; pooler; classifier.
    return v * h + p * h + 2 * h + 2 * h + layers * layer_params(h, i) + (h * h + h) + (h * c + c)


def distilbert_classifier_params(v, layers, h=HIDDEN, i=INTERMEDIATE, p=SEQ_LEN, c=NUM_CLASSES):
    # token, position embeddings, LayerNorm; layers; pre_classifier; classifier.
    return v * h + p * h + 2 * h + layers * layer_params(h, i) + (h * h + h) + (h * c + c)


def test_cli_run_succeeds_and_prints_precision_and_table(run):
    assert run["code"] == 0
    assert "[tfdistil] precision: float32 (requested)" in run["stdout"]
    assert "| model | dev accuracy | parameters |" in run["stdout"]


def test_report_rows(run):
    rep = run["report"]
    assert rep["name"] == RUN_NAME
    assert (rep["precision"], rep["precision_reason"]) == ("float32", "requested")
    # The embedded dev file: a header line, then one example a line.
    with open(os.path.join(os.path.dirname(__import__("tfdistil.data").data.__file__), "sentiment_dev.tsv"),
              encoding="utf-8") as f:
        n_dev = sum(1 for line in f if line.strip()) - 1
    assert rep["dev_examples"] == n_dev == 500
    rows = rep["models"]
    assert [r["model"] for r in rows] == MODEL_NAMES
    for r in rows:
        # Each student row carries its training time.
        assert set(r) == ROW_KEYS | ({"train_time_s"} if r["model"] != "teacher" else set())
        assert r.get("train_time_s", 1.0) > 0
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["accuracy"] * n_dev == pytest.approx(round(r["accuracy"] * n_dev), abs=1e-6)  # k / 500
        assert r["latency_ms_batch1"] > 0 and r["latency_ms_batch32"] > 0
    teacher = rows[0]
    for r in rows:
        # Speed-up = teacher latency / model latency, checked from the JSON's own numbers.
        assert r["speedup_batch32"] == pytest.approx(teacher["latency_ms_batch32"] / r["latency_ms_batch32"], rel=1e-12)
        assert r["speedup_batch1"] == pytest.approx(teacher["latency_ms_batch1"] / r["latency_ms_batch1"], rel=1e-12)
    assert teacher["speedup_batch32"] == teacher["speedup_batch1"] == 1.0
    assert rows[1]["parameters"] == rows[2]["parameters"] < teacher["parameters"]
    assert rep["layer_map"] is None  # narrower than the teacher: random init
    assert rep["plots"] == ["training_curves.png", "accuracy_vs_latency.png", "confusion_matrix.png"]
    # One epoch each, as asked on the command line.
    assert set(rep["histories"]) == set(MODEL_NAMES)
    for name, history in rep["histories"].items():
        assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history), name
        assert all(len(values) == 1 for values in history.values()), name
    assert {"soft_loss", "hard_loss"} <= set(rep["histories"]["student (distilled)"])
    assert "hidden_cosine_loss" not in rep["histories"]["student (distilled)"]  # weight 0: widths differ


def test_report_sizes_exclude_optimizer_state(run):
    # float32 weights: 4 bytes a parameter, plus a little HDF5 bookkeeping. The hard-label
    # student was compiled and trained with AdamW, the distilled one was not (the
    # Distiller holds the optimizer): both must report the same size. Before the fix the
    # hard-label student's file also held Adam's two moments (3x).
    rows = run["report"]["models"]
    for r in rows:
        raw_mb = 4 * r["parameters"] / 1e6
        assert raw_mb <= r["size_mb"] < raw_mb + 0.5, r
    assert rows[1]["size_mb"] == pytest.approx(rows[2]["size_mb"], rel=0.01)


def test_parameter_counts_match_saved_models_and_architecture(run, reloaded):
    rows = {r["model"]: r for r in run["report"]["models"]}
    vocab = load_vocabulary(run["dir"] / "vocab.txt")
    v = len(vocab)
    teacher = reloaded["teacher.keras"]
    distilled = reloaded["student_distilled.keras"]
    hard = reloaded["student_hard_labels.keras"]
    assert isinstance(teacher.backbone, BertBackbone) and teacher.backbone.num_layers == 2
    for student in (distilled, hard):
        assert isinstance(student, TextClassifier) and isinstance(student.backbone, DistilBertBackbone)
        assert student.backbone.num_layers == 1 and student.backbone.hidden_dim == STUDENT_HIDDEN
        assert student.backbone.num_heads == 2 and student.backbone.intermediate_dim == STUDENT_INTERMEDIATE
    for model in (teacher, distilled, hard):
        assert model.backbone.vocabulary_size == v
        assert model.backbone.max_sequence_length == SEQ_LEN
    assert rows["teacher"]["parameters"] == teacher.count_params() == bert_classifier_params(v, 2)
    for name, model in (("student (distilled)", distilled), ("student (hard labels)", hard)):
        assert rows[name]["parameters"] == model.count_params() == distilbert_classifier_params(
            v, 1, h=STUDENT_HIDDEN, i=STUDENT_INTERMEDIATE)


def test_report_accuracies_are_those_of_the_saved_models(run, reloaded):
    # Dev accuracy recounted here with numpy from the reloaded .keras files.
    dev = load_sentiment_dataset("dev")
    tokenizer = WordPieceTokenizer(load_vocabulary(run["dir"] / "vocab.txt"), sequence_length=SEQ_LEN,
                                   pad_to_sequence_length=False)
    ds = make_classification_dataset(dev, tokenizer, 64, bucket_boundaries=None, log_truncation=False)
    batches = list(ds)
    labels = np.concatenate([np.asarray(y) for _, y in batches])
    assert len(labels) == 500
    rows = {r["model"]: r for r in run["report"]["models"]}
    for name, saved in zip(MODEL_NAMES, SAVED_MODELS):
        model = reloaded[saved]
        preds = np.concatenate([np.argmax(np.asarray(model(x, training=False)), axis=-1) for x, _ in batches])
        assert rows[name]["accuracy"] == pytest.approx(np.sum(preds == labels) / len(labels), abs=1e-9), name


def test_report_markdown_holds_the_table_and_plots(run):
    text = (run["dir"] / "report.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == f"# Run `{RUN_NAME}`"
    header = ("| model | dev accuracy | parameters | size (MB) | latency b=1 (ms) | latency b=32 (ms) "
              "| speed-up b=32 |")
    i = lines.index(header)
    assert lines[i + 1] == "|---|---|---|---|---|---|---|"
    for k, r in enumerate(run["report"]["models"]):
        expected = (
            f"| {r['model']} | {100 * r['accuracy']:.2f}% | {r['parameters']:,} | {r['size_mb']:.2f} "
            f"| {r['latency_ms_batch1']:.2f} | {r['latency_ms_batch32']:.2f} | {r['speedup_batch32']:.2f}x |"
        )
        assert lines[i + 2 + k] == expected
    assert "Precision: `float32` (requested). Dev set: 500 examples." in text
    for plot in ("training_curves.png", "accuracy_vs_latency.png", "confusion_matrix.png"):
        assert f"![{plot}]({plot})" in lines


@pytest.mark.parametrize(
    "name,shape",
    [
        # figsize (inches) x dpi 110: training curves 2 panels (loss, accuracy) of 5 x 3.6.
        ("training_curves.png", (396, 1100)),
        ("accuracy_vs_latency.png", (396, 550)),  # 5 x 3.6
        ("confusion_matrix.png", (374, 418)),  # 3.8 x 3.4
    ],
)
def test_plots_are_valid_pngs(run, name, shape):
    import matplotlib.image

    path = run["dir"] / name
    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[:2] == shape
    assert image[..., :3].std() > 0  # not a blank canvas


def test_config_json_records_the_run(run):
    with open(run["dir"] / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    assert config["resolved_precision"] == "float32"
    assert config["precision"] == "float32"
    assert (config["name"], config["teacher_epochs"], config["student_epochs"]) == (RUN_NAME, 1, 1)
    assert (config["teacher_num_layers"], config["vocabulary_size"], config["verbose"]) == (2, 300, 0)
    assert config["runs_dir"] == str(run["dir"].parent)


def test_vocabulary_file(run):
    with open(run["dir"] / "vocab.txt", encoding="utf-8") as f:
        tokens = f.read().split("\n")[:-1]
    assert tokens[0] == "[PAD]"
    assert {"[UNK]", "[CLS]", "[SEP]", "[MASK]"} <= set(tokens)
    assert len(tokens) == len(set(tokens)) <= 300


def test_tensorboard_logs_of_the_three_models(run):
    logs = run["dir"] / "logs"
    assert sorted(p.name for p in logs.iterdir()) == sorted(LOG_NAMES)
    for name in LOG_NAMES:
        train = read_tensorboard_scalars(logs / name / "train")
        val = read_tensorboard_scalars(logs / name / "validation")
        for tags in (train, val):
            for tag in ("epoch_loss", "epoch_accuracy"):
                assert [step for step, _ in tags[tag]] == [0], (name, tag)
        # One epoch is the whole schedule: the learning rate has decayed to 0 by its end.
        assert train["epoch_learning_rate"] == [(0, 0.0)], name
        if name == "student_distilled":
            for tags in (train, val):
                assert {"epoch_soft_loss", "epoch_hard_loss"} <= set(tags)
        else:
            assert not {"epoch_soft_loss", "epoch_hard_loss", "epoch_hidden_cosine_loss"} & set(train)
    # The logs hold what the report's histories hold.
    hist = run["report"]["histories"]["student (distilled)"]
    distilled = read_tensorboard_scalars(logs / "student_distilled" / "train")
    assert distilled["epoch_soft_loss"][0][1] == pytest.approx(hist["soft_loss"][0], rel=1e-6)


def test_finished_run_leaves_no_backups(run):
    assert not (run["dir"] / "backup").exists()


def test_run_restores_the_callers_dtype_policy(run):
    assert run["policy_after"] == "mixed_bfloat16"


def test_rerun_of_an_interrupted_run_reuses_the_finished_teacher(run, tmp_path):
    # Simulate a run killed during the student phase: same folder, same config, teacher saved.
    import shutil

    runs_dir = tmp_path / "runs"
    shutil.copytree(run["dir"], runs_dir / RUN_NAME)
    for name in ("student_distilled.keras", "student_hard_labels.keras"):
        (runs_dir / RUN_NAME / "models" / name).unlink()
    before = keras.models.load_model(runs_dir / RUN_NAME / "models" / "teacher.keras").get_weights()
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert cli.main(RUN_ARGS + ["--runs-dir", str(runs_dir)]) == 0
    assert "reusing" in stdout.getvalue()
    after = keras.models.load_model(runs_dir / RUN_NAME / "models" / "teacher.keras").get_weights()
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert (runs_dir / RUN_NAME / "models" / "student_distilled.keras").exists()
    # Another config in the same folder trains its own teacher.
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert cli.main(RUN_ARGS + ["--runs-dir", str(runs_dir), "--seed", "1"]) == 0
    assert "reusing" not in stdout.getvalue()


def test_default_run_is_a_standard_run_folder(run):
    """tokenizer.json and label_names.json like any run: `evaluate` scores its student on the
    embedded dev file as the report did."""
    from tfdistil.data.sentiment import sentiment_dataset_path

    assert json.loads((run["dir"] / "label_names.json").read_text()) == ["negative", "positive"]
    settings = json.loads((run["dir"] / "tokenizer.json").read_text())
    assert settings["sequence_length"] == SEQ_LEN and settings["pad_to_sequence_length"] is False
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert cli.main(["evaluate", "--run", str(run["dir"]), "--data", str(sentiment_dataset_path("dev")),
                         "--output", str(run["dir"] / "eval.json")]) == 0
    result = json.loads(stdout.getvalue())
    assert result["model"] == "student_distilled" and result["examples"] == 500
    assert result["accuracy"] == pytest.approx(run["report"]["models"][1]["accuracy"], abs=1e-9)


def test_saved_teacher_is_trainable(reloaded):
    teacher = reloaded["teacher.keras"]
    assert teacher.trainable and len(teacher.trainable_weights) == len(teacher.weights)


# ----- the CLI's surface ----------------------------------------------------------------


def test_module_help_lists_commands_and_options(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    procs = [
        subprocess.Popen([sys.executable, "-m", "tfdistil", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=str(tmp_path))
        for args in (["--help"], ["distill", "--help"])
    ]
    (top_out, top_err), (sub_out, sub_err) = (p.communicate(timeout=120) for p in procs)
    assert procs[0].returncode == 0, top_err
    assert procs[1].returncode == 0, sub_err
    assert top_out.startswith("usage: tfdistil") and "distill" in top_out
    assert sub_out.startswith("usage: tfdistil distill")
    for flag in ALL_FLAGS:
        assert flag in sub_out, flag


def test_cli_parses_types():
    args = cli.build_parser().parse_args(
        ["distill", "--teacher-epochs", "3", "--alpha", "0.25", "--name", "x", "--student-learning-rate", "1e-4"]
    )
    assert (args.command, args.teacher_epochs, args.alpha, args.name) == ("distill", 3, 0.25, "x")
    assert isinstance(args.teacher_epochs, int) and args.student_learning_rate == pytest.approx(1e-4)
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(io.StringIO()):
        cli.build_parser().parse_args(["distill", "--teacher-epochs", "three"])
    assert info.value.code == 2


def test_cli_rejects_unknown_precision(tmp_path):
    # Today the error comes from resolve_precision (ValueError listing the choices);
    # with `choices=` on the flag argparse would exit with status 2 instead.
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            cli.main(["distill", "--runs-dir", str(tmp_path), "--precision", "float16"])
        except ValueError as error:
            assert "'float16'" in str(error) and "mixed_bfloat16" in str(error)
        except SystemExit as error:
            assert error.code == 2
        else:
            pytest.fail("an unknown precision was accepted")
    assert keras.config.dtype_policy().name == "float32"


# ----- report and evaluation helpers ----------------------------------------------------


def test_markdown_table_by_hand():
    columns = [("model", "name", "{}"), ("accuracy", "acc", "{:.1%}"), ("n", "count", "{:,}"),
               ("x", "speed", "{:.2f}x")]
    rows = [dict(model="a", accuracy=0.5, n=1234567, x=1.0), dict(model="b c", accuracy=0.125, n=7, x=2.345)]
    assert report.markdown_table(rows, columns) == (
        "| name | acc | count | speed |\n"
        "|---|---|---|---|\n"
        "| a | 50.0% | 1,234,567 | 1.00x |\n"
        "| b c | 12.5% | 7 | 2.35x |"
    )
    assert report.markdown_table([], columns[:2]) == "| name | acc |\n|---|---|"
    with pytest.raises(KeyError):
        report.markdown_table([dict(model="a")], columns)


def test_markdown_table_with_model_columns():
    row = dict(model="teacher", accuracy=0.8765, parameters=440066, size_mb=1.7654, latency_ms_batch1=1.2345,
               latency_ms_batch32=9.876, speedup_batch32=1.0)
    assert report.markdown_table([row], MODEL_COLUMNS).splitlines()[2] == (
        "| teacher | 87.65% | 440,066 | 1.77 | 1.23 | 9.88 | 1.00x |"
    )


def logits_model():
    """A keras model whose output is its input: the test chooses the logits."""
    inputs = keras.Input((3,), name="logits_in")
    return keras.Model(inputs, keras.layers.Identity()(inputs))


# 10 examples, 3 classes; argmax by hand: 0 2 1 1 0 2 2 0 1 1
LOGITS = np.array([
    [3.0, 1.0, 0.0], [0.0, 0.5, 2.0], [0.1, 0.9, 0.3], [-1.0, 4.0, 2.0], [5.0, -2.0, 1.0],
    [0.0, 0.0, 0.1], [1.0, 2.0, 3.0], [0.3, 0.2, 0.1], [-3.0, -1.0, -2.0], [0.0, 7.0, 6.9],
], np.float32)
LABELS = np.array([0, 2, 0, 1, 1, 2, 0, 0, 1, 2], np.int32)  # right: 0 1 3 5 7 8 -> 6 of 10


def test_accuracy_and_predict_labels_count_by_hand():
    model = logits_model()
    ds = tf.data.Dataset.from_tensor_slices((LOGITS, LABELS)).batch(4)  # batches of 4, 4, 2
    y_true, y_pred = evaluation.predict_labels(model, ds)
    np.testing.assert_array_equal(y_true, LABELS)
    np.testing.assert_array_equal(y_pred, [0, 2, 1, 1, 0, 2, 2, 0, 1, 1])
    assert evaluation.accuracy(model, ds) == pytest.approx(0.6)
    assert evaluation.accuracy(model, tf.data.Dataset.from_tensor_slices((LOGITS[:1], LABELS[:1])).batch(1)) == 1.0


def test_scores_use_the_graph_that_fit_validates_and_serving_runs():
    """Under mixed_bfloat16, eager calls round differently from the graph (fused matmul + bias
    + GELU): on this model 4 of 2,048 eager argmaxes differ from `model.predict`'s. Scores,
    predictions and a run's report must agree with `fit`'s validation and the SavedModel, so
    `predict_labels` goes through the graph: the same labels as `predict`, all of them."""
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        backbone = DistilBertBackbone(vocabulary_size=100, num_layers=2, num_heads=4, hidden_dim=256,
                                      intermediate_dim=1024, max_sequence_length=16)
        model = TextClassifier(backbone, num_classes=3)
        rng = np.random.default_rng(0)
        x = {"token_ids": rng.integers(1, 100, (2048, 16)).astype("int32"),
             "padding_mask": np.ones((2048, 16), "int32")}
        y = rng.integers(0, 3, 2048)
        graph = np.argmax(model.predict(x, batch_size=64, verbose=0), axis=-1)
        y_true, y_pred = evaluation.predict_labels(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(64))
    finally:
        keras.config.set_dtype_policy(policy)
    np.testing.assert_array_equal(y_true, y)
    np.testing.assert_array_equal(y_pred, graph)


def tiny_text_classifier():
    backbone = DistilBertBackbone(vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                                  max_sequence_length=6)
    return TextClassifier(backbone, num_classes=2)


def test_size_on_disk_ignores_optimizer_state():
    model = tiny_text_classifier()
    fresh_mb = evaluation.size_on_disk_mb(model)
    assert fresh_mb >= 4 * model.count_params() / 1e6
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = {"token_ids": rng.integers(1, 30, (4, 6)).astype("int32"), "padding_mask": np.ones((4, 6), "int32")}
    model.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert model.optimizer.built and len(model.optimizer.variables) > 2 * len(model.trainable_variables)
    assert evaluation.size_on_disk_mb(model) == pytest.approx(fresh_mb, rel=1e-3)


def test_latency_runs_the_model_on_its_own_inputs(monkeypatch):
    """latency_ms feeds the model's own inputs (DistilBERT: no segment_ids) of batch x sequence
    token ids inside its vocabulary, calls it warmup + repeats times, and reports the median call
    in milliseconds: a call made to take 20 ms (a sleep) reads as 20 ms, not 0.02 or 20,000."""
    model = tiny_text_classifier()
    calls = []

    def timed_model(inputs):
        calls.append({k: np.asarray(v) for k, v in inputs.items()})
        time.sleep(0.02)
        return model(inputs, training=False)

    monkeypatch.setattr(evaluation, "inference_function", lambda m: timed_model if m is model else None)
    ms = evaluation.latency_ms(model, batch_size=2, sequence_length=6, repeats=3, warmup=1)
    assert isinstance(ms, float) and 20 <= ms < 200
    assert len(calls) == 4
    for inputs in calls:
        assert sorted(inputs) == ["padding_mask", "token_ids"]
        assert inputs["token_ids"].shape == inputs["padding_mask"].shape == (2, 6)
        assert inputs["token_ids"].min() >= 1 and inputs["token_ids"].max() < 30


def test_the_cached_inference_function_does_not_keep_its_model_alive():
    # In a fresh interpreter: pytest's own bookkeeping can hold objects of a test alive.
    code = (
        "import gc, weakref\n"
        "from tfdistil import evaluation\n"
        "from tfdistil.models import DistilBertBackbone, TextClassifier\n"
        "m = TextClassifier(DistilBertBackbone(vocabulary_size=30, num_layers=1, num_heads=2, hidden_dim=8,"
        " intermediate_dim=16, max_sequence_length=6), num_classes=2)\n"
        "evaluation.latency_ms(m, 2, 6, repeats=1, warmup=1)\n"
        "assert len(evaluation._INFERENCE) == 1\n"
        "ref = weakref.ref(m); del m; gc.collect()\n"
        "print('alive', ref() is not None, len(evaluation._INFERENCE))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "alive False 0"


def test_report_says_why_the_students_differ(run, reloaded):
    """The report's one-sentence lesson: which way the students came out, and the number of
    training labels the teacher disagrees with, recounted here from the reloaded teacher."""
    rep = run["report"]
    rows = {r["model"]: r for r in rep["models"]}
    won = rows["student (distilled)"]["accuracy"] > rows["student (hard labels)"]["accuracy"]
    why = rep["why"]
    assert why.startswith("Why distillation wins:" if won else "Why distillation does not win here:")
    assert "from random weights" in why and "8,000" in why
    train = load_sentiment_dataset("train")
    tokenizer = WordPieceTokenizer(load_vocabulary(run["dir"] / "vocab.txt"), sequence_length=SEQ_LEN,
                                   pad_to_sequence_length=False)
    ds = make_classification_dataset(train, tokenizer, 64, bucket_boundaries=None, log_truncation=False)
    teacher = reloaded["teacher.keras"]
    preds = np.concatenate([np.argmax(np.asarray(teacher(x, training=False)), axis=-1) for x, _ in ds])
    disagreements = int(np.sum(preds != np.asarray(train.labels)))
    if disagreements:
        assert f"the teacher disagrees with {disagreements:,} of the 8,000 training labels" in why
    text = (run["dir"] / "report.md").read_text(encoding="utf-8")
    assert why in text.splitlines()
    assert f"[tfdistil] {why}" in run["stdout"]
    for name in MODEL_NAMES:
        assert f"| {name} |" in text
