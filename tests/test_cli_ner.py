"""`tfdistil finetune --task ner` and `tfdistil distill --task ner` on a slice of CoNLL-2003:
the CLI reaches the NER jobs with the flags it was given, and refuses options that only
apply to classification files."""
import json

import pytest

from test_ner import _sentences, _write
from tfdistil import cli


@pytest.fixture(scope="module")
def conll_files(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_ner")
    train = _write(_sentences(shared_data / "conll2003" / "train.txt", 40), tmp / "train.txt")
    dev = _write(_sentences(shared_data / "conll2003" / "valid.txt", 20), tmp / "dev.txt")
    return tmp, train, dev


def test_finetune_then_distill_ner_from_the_command_line(conll_files):
    tmp, train, dev = conll_files
    runs = tmp / "runs"
    common = ["--runs-dir", str(runs), "--precision", "float32", "--verbose", "0", "--task", "ner"]
    assert cli.main(["finetune", "--train", str(train), "--dev", str(dev), "--preset", "bert_tiny",
                     "--num-layers", "2", "--vocabulary-size", "300", "--epochs", "1", "--batch-size", "8",
                     "--sequence-length", "48", "--name", "tagger", *common]) == 0
    teacher = json.loads((runs / "tagger" / "report.json").read_text())
    assert json.loads((runs / "tagger" / "label_names.json").read_text())[0] == "O"
    assert cli.main(["distill", "--teacher", str(runs / "tagger"), "--train", str(train), "--dev", str(dev),
                     "--student-layers", "1", "--student-epochs", "1", "--batch-size", "8", *common]) == 0
    student_dir = runs / "tagger_distilled"
    report = json.loads((student_dir / "report.json").read_text())
    assert report["task"] == "ner" and report["train_examples"] == 40 and report["dev_examples"] == 20
    assert report["entity_types"] == ["LOC", "MISC", "ORG", "PER"] or sorted(report["entity_types"]) == [
        "LOC", "MISC", "ORG", "PER"]
    # The flags reached the jobs: a 2-layer teacher, 1-layer students.
    assert teacher["models"][0]["num_layers"] == 2
    assert [row["num_layers"] for row in report["models"]] == [2, 1, 1]
    for row in report["models"]:
        assert set(row["per_type"]) == {"PER", "LOC", "ORG", "MISC"}
        assert 0.0 <= row["f1"] <= 1.0
    assert (student_dir / "models" / "student_distilled.keras").exists()
    assert (student_dir / "models" / "student_hard_labels.keras").exists()
    # Without the hard-label baseline: the teacher and the distilled student only, and the same
    # distilled student (the seed decides it, not whether a baseline is trained after it).
    assert cli.main(["distill", "--teacher", str(runs / "tagger"), "--train", str(train), "--dev", str(dev),
                     "--student-layers", "1", "--student-epochs", "1", "--batch-size", "8", "--name", "alone",
                     "--no-hard-labels-baseline", *common]) == 0
    alone = json.loads((runs / "alone" / "report.json").read_text())
    assert [row["model"] for row in alone["models"]] == ["teacher", "student (distilled)"]
    assert alone["models"][1]["f1"] == pytest.approx(report["models"][1]["f1"], abs=1e-9)
    assert alone["models"][1]["train_time_s"] > 0 and "hard labels" not in alone["summary"]
    assert not (runs / "alone" / "models" / "student_hard_labels.keras").exists()


def test_classification_columns_are_refused_for_ner(conll_files, capsys):
    tmp, train, dev = conll_files
    code = cli.main(["finetune", "--train", str(train), "--dev", str(dev), "--preset", "bert_tiny",
                     "--task", "ner", "--text-column", "sentence", "--runs-dir", str(tmp / "r")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--text-column" in err and "--task ner" in err and len(err.strip().splitlines()) == 1


def test_evaluate_and_predict_a_tagger_run(conll_files, capsys):
    """`evaluate` on a tagger run gives seqeval's entity scores; `predict` tags each word. The F1
    that evaluate prints is recomputed here with seqeval from predict's word/TAG output."""
    from seqeval.metrics import f1_score

    tmp, train, dev = conll_files
    runs = tmp / "runs_eval"
    assert cli.main(["finetune", "--train", str(train), "--dev", str(dev), "--preset", "bert_tiny",
                     "--num-layers", "1", "--vocabulary-size", "300", "--epochs", "6", "--patience", "6", "--batch-size", "8",
                     "--sequence-length", "48", "--name", "tagger", "--runs-dir", str(runs), "--precision",
                     "float32", "--verbose", "0", "--task", "ner", "--learning-rate", "3e-3"]) == 0
    capsys.readouterr()
    run = runs / "tagger"
    assert cli.main(["evaluate", "--run", str(run), "--data", str(dev)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["sentences"] == 20 and set(result["per_type"]) == {"PER", "LOC", "ORG", "MISC"}
    assert json.loads((run / "evaluation_model_dev.json").read_text())["f1"] == result["f1"]

    gold = [[line.split() for line in block.splitlines()] for block in dev.read_text().strip().split("\n\n")]
    texts = [" ".join(cols[0] for cols in sentence) for sentence in gold]
    assert cli.main(["predict", "--run", str(run), *texts]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(texts)
    predicted = [[item.rsplit("/", 1) for item in line.split(" ")] for line in lines]
    assert [[w for w, _ in row] for row in predicted] == [[cols[0] for cols in s] for s in gold]
    labels = set(json.loads((run / "label_names.json").read_text()))
    assert all(tag in labels for row in predicted for _, tag in row)
    # Not 0 compared with 0: the tagger predicts entities.
    assert sum(tag != "O" for row in predicted for _, tag in row) > 0
    true_tags = [[cols[-1] for cols in s] for s in gold]
    assert f1_score(true_tags, [[t for _, t in row] for row in predicted]) == pytest.approx(result["f1"], abs=1e-9)
