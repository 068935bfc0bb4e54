"""NER jobs end to end on a slice of the real CoNLL-2003 files: a tiny tagger fine-tuned from
scratch, a DistilBERT student distilled from it, and the reports' seqeval numbers checked
against predictions recomputed here from the saved models, word by word."""
import json
import os

import numpy as np
import pytest

import keras

from tfdistil.jobs import RunConfig, distill, finetune
from tfdistil.jobs.runs import RunError

ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")
SEQUENCE_LENGTH = 64  # short enough that some dev sentences are truncated


def _sentences(path, n):
    """The first `n` sentences of a CoNLL file as lists of (word, tag)."""
    sentences, current = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0] == "-DOCSTART-":
                if current:
                    sentences.append(current)
                    current = []
                if len(sentences) == n:
                    break
                continue
            current.append((fields[0], fields[1]))
    if current and len(sentences) < n:
        sentences.append(current)
    return sentences


def _write(sentences, path):
    with open(path, "w", encoding="utf-8") as f:
        for sentence in sentences:
            f.write("".join(f"{w} {t}\n" for w, t in sentence) + "\n")
    return path


@pytest.fixture(scope="module")
def ner_runs(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ner")
    train = _write(_sentences(shared_data / "conll2003" / "train.txt", 60), tmp / "train.txt")
    dev_sentences = _sentences(shared_data / "conll2003" / "valid.txt", 30)
    dev = _write(dev_sentences, tmp / "dev.txt")
    callers_policy = keras.config.dtype_policy().name
    teacher_dir, student_dir = tmp / "runs" / "ner_teacher", tmp / "runs" / "ner_student"
    common = dict(train=str(train), dev=str(dev), runs_dir=str(tmp / "runs"), batch_size=8, precision="float32",
                  verbose=0)
    teacher_report = finetune(RunConfig.from_flat(
        common, task="ner", name="ner_teacher", preset="bert_tiny", vocabulary_size=400, teacher_epochs=6,
        teacher_learning_rate=3e-3, sequence_length=SEQUENCE_LENGTH, patience=10,
    ))
    # The task comes from the teacher's run.
    student_report = distill(RunConfig.from_flat(
        common, teacher=str(teacher_dir), name="ner_student", student_layers=1, student_epochs=3,
        student_learning_rate=3e-3,
    ))
    assert keras.config.dtype_policy().name == callers_policy
    return dict(tmp=tmp, train=train, dev=dev, dev_sentences=dev_sentences, teacher_dir=teacher_dir,
                student_dir=student_dir, teacher_report=teacher_report, student_report=student_report)


def _load_tokenizer(run_dir):
    """The run's tokenizer rebuilt from its files (not through tfdistil.jobs.runs)."""
    from tfdistil.text import WordPieceTokenizer

    with open(run_dir / "tokenizer.json", encoding="utf-8") as f:
        settings = json.load(f)
    return WordPieceTokenizer(str(run_dir / "vocab.txt"), **settings)


def _predict_words(model, tokenizer, sentences, label_names):
    """Tag strings per word, computed here: pack `[CLS] pieces [SEP]` by hand (a word with no
    piece becomes [UNK]; pieces beyond sequence_length - 2 are cut), run the model, take the
    argmax at each word's first piece; words cut off are "O"."""
    import tensorflow as tf

    seq_len = tokenizer.sequence_length
    words = tf.ragged.constant([[w for w, _ in s] for s in sentences])
    pieces = tokenizer.tokenize_words(words).to_list()  # (sentences, words, pieces)
    token_ids = np.full((len(sentences), seq_len), tokenizer.pad_token_id, np.int32)
    mask = np.zeros((len(sentences), seq_len), np.int32)
    firsts = []
    for i, sentence_pieces in enumerate(pieces):
        ids, first = [tokenizer.cls_token_id], []
        for word_pieces in sentence_pieces:
            word_pieces = word_pieces or [tokenizer.unk_token_id]
            if len(ids) - 1 >= seq_len - 2:
                break
            first.append(len(ids))
            ids.extend(word_pieces[: seq_len - 2 - (len(ids) - 1)])
        ids.append(tokenizer.sep_token_id)
        token_ids[i, : len(ids)] = ids
        mask[i, : len(ids)] = 1
        firsts.append(first)
    x = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": mask}
    x = {k: v for k, v in x.items() if k in model.backbone.input_names()}
    pred = np.argmax(np.asarray(model.predict(x, batch_size=16, verbose=0)), axis=-1)  # (sentences, seq)
    tags = []
    for i, sentence in enumerate(sentences):
        row = [label_names[int(pred[i, p])] for p in firsts[i]]
        tags.append(row + ["O"] * (len(sentence) - len(row)))
    return tags, sum(len(f) < len(s) for f, s in zip(firsts, sentences))


def _check_against_seqeval(row, model, tokenizer, sentences, label_names):
    from seqeval.metrics import classification_report

    pred, truncated = _predict_words(model, tokenizer, sentences, label_names)
    gold = [[t for _, t in s] for s in sentences]
    expected = classification_report(gold, pred, output_dict=True, zero_division=0)
    for kind in ENTITY_TYPES:
        assert kind in expected, f"{kind} missing from the dev gold/predictions: {sorted(expected)}"
        got = row["per_type"][kind]
        assert got["precision"] == pytest.approx(expected[kind]["precision"])
        assert got["recall"] == pytest.approx(expected[kind]["recall"])
        assert got["f1"] == pytest.approx(expected[kind]["f1-score"])
        assert got["support"] == expected[kind]["support"]
        assert 0.0 <= got["f1"] <= 1.0
    overall = expected["micro avg"]
    assert row["precision"] == pytest.approx(overall["precision"])
    assert row["recall"] == pytest.approx(overall["recall"])
    assert row["f1"] == pytest.approx(overall["f1-score"])
    assert 0.0 <= row["f1"] <= 1.0
    return pred, truncated


def test_finetune_report_matches_seqeval_recomputed_from_saved_model(ner_runs):
    run = ner_runs["teacher_dir"]
    for name in ("config.json", "vocab.txt", "tokenizer.json", "label_names.json", "models/model.keras",
                 "report.json", "report.md"):
        assert (run / name).is_file(), name
    with open(run / "report.json", encoding="utf-8") as f:
        report = json.load(f)
    assert report == json.loads(json.dumps(ner_runs["teacher_report"]))
    assert set(ENTITY_TYPES) <= set(report["entity_types"])
    (row,) = report["models"]
    label_names = json.loads((run / "label_names.json").read_text())
    model = keras.models.load_model(run / "models" / "model.keras")
    pred, truncated = _check_against_seqeval(row, model, _load_tokenizer(run), ner_runs["dev_sentences"],
                                             label_names)
    assert truncated > 0, "the slice should exercise truncated sentences (words predicted O)"
    # The comparison means something only if the tagger predicts some entities.
    assert sum(tag != "O" for tags in pred for tag in tags) > 0
    assert row["precision"] > 0.0
    assert len(report["histories"]["model"]["loss"]) == 6
    md = (run / "report.md").read_text()
    for kind in ENTITY_TYPES:
        assert f"{kind} F1" in md


def test_distill_report_matches_seqeval_and_student_is_smaller(ner_runs):
    run = ner_runs["student_dir"]
    with open(run / "report.json", encoding="utf-8") as f:
        report = json.load(f)
    rows = {r["model"]: r for r in report["models"]}
    assert list(rows) == ["teacher", "student (distilled)", "student (hard labels)"]
    assert rows["student (distilled)"]["parameters"] < rows["teacher"]["parameters"]
    assert rows["student (hard labels)"]["parameters"] == rows["student (distilled)"]["parameters"]
    assert rows["student (distilled)"]["num_layers"] == 1 and rows["teacher"]["num_layers"] == 2
    # The teacher scored here is the saved one: same numbers as in its own run's report.
    assert rows["teacher"]["seqeval"] == ner_runs["teacher_report"]["models"][0]["seqeval"]
    label_names = json.loads((run / "label_names.json").read_text())
    tokenizer = _load_tokenizer(run)
    for label, file in (("student (distilled)", "student_distilled"), ("student (hard labels)", "student_hard_labels")):
        model = keras.models.load_model(run / "models" / f"{file}.keras")
        assert model.count_params() == rows[label]["parameters"]
        pred, _ = _check_against_seqeval(rows[label], model, tokenizer, ner_runs["dev_sentences"], label_names)
        # Not 0 compared with 0: the student predicts entities, and finds some of them.
        assert sum(tag != "O" for tags in pred for tag in tags) > 0, label
        assert rows[label]["recall"] > 0, label
    md = (run / "report.md").read_text()
    for label in rows:
        assert f"| {label} |" in md
    assert os.path.isdir(run / "logs" / "student_distilled")


def test_finetune_ner_user_errors(tmp_path, ner_runs):
    files = dict(train=str(ner_runs["train"]), dev=str(ner_runs["dev"]), runs_dir=str(tmp_path), task="ner")
    with pytest.raises(RunError, match="either --hf PATH or --preset NAME"):
        finetune(RunConfig.from_flat(files, name="r"))
    with pytest.raises(RunError, match="unknown preset"):
        finetune(RunConfig.from_flat(files, name="r", preset="bert_huge", precision="float32"))
    with pytest.raises(RunError, match="run directory not found"):
        distill(RunConfig.from_flat(files, name="s", teacher=str(tmp_path / "missing")))
    # A classification run is not a tagger: distilling it as NER names both tasks.
    with pytest.raises(RunError, match="trained for 'ner'"):
        distill(RunConfig.from_flat(files, name="s", teacher=str(ner_runs["teacher_dir"]), task="classification"))
