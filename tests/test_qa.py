"""Question answering: EM/F1 and the span search against values worked by hand, the Distiller's
span loss against numpy, cached teacher logits of dict outputs, and the CLI end to end."""
import collections
import json
import re
import string

import numpy as np
import pytest
import tensorflow as tf

from tfdistil import cli
from tfdistil.distillation import Distiller, SpanPositions, cache_teacher_outputs
from tfdistil.models import BertBackbone, DistilBertBackbone, SpanQA
from tfdistil.tasks.squad_metrics import best_window_span, exact_match, f1_score, normalize_answer, squad_scores


# ----- metrics ---------------------------------------------------------------------------


def test_normalisation_em_and_f1_by_hand():
    assert normalize_answer("  The Denver-Broncos!  ") == "denverbroncos"
    assert normalize_answer("An apple, a day; THE end") == "apple day end"
    assert normalize_answer("theatre") == "theatre"  # articles only as words
    assert exact_match("the Broncos.", "Broncos") == 1.0
    # pred {denver, broncos}, gold {broncos, of, denver}: P = 2/2, R = 2/3, F1 = 2PR/(P+R) = 0.8
    assert f1_score("Denver Broncos", "the Broncos of Denver") == pytest.approx(0.8)
    # Repeated words count as many times as both have them: pred {a:.., x, x, y}, gold {x, y, y}
    # common = min(2,1) x + min(1,2) y = 2; P = 2/3, R = 2/3 -> 2/3
    assert f1_score("x x y", "x y y") == pytest.approx(2 / 3)
    assert f1_score("nothing", "else") == 0.0


def test_squad_scores_take_the_best_reference_and_average_in_percent():
    from tfdistil.data.squad import SquadExample

    examples = [SquadExample("1", "t", "q", "c", [("Denver Broncos", 0), ("Broncos", 0)]),
                SquadExample("2", "t", "q", "c", [("in 1990", 0), ("1990 summer", 0)]),
                SquadExample("3", "t", "q", "c", [("x", 0)])]
    predictions = {"1": "the Broncos", "2": "1990"}  # "3" missing: scored as ""
    # 1: EM 1 (vs "Broncos"); 2: F1 max(2/3 (P 1, R 1/2), 2/3) = 2/3, EM 0; 3: 0.
    scores = squad_scores(predictions, examples)
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)


def test_best_span_of_a_window_by_hand():
    start = np.array([9.0, 1.0, 3.0, 0.5, 2.0, -1.0])
    end = np.array([9.0, 0.0, 1.0, 4.0, 0.5, 5.0])
    in_context = np.array([False, True, True, True, True, True])
    # Candidates: position 0 is not context. Best start 2 (3.0), best end 5 (5.0): 8.0, length 4.
    assert best_window_span(start, end, in_context) == (8.0, 2, 5)
    # At most 3 tokens: (2, 3) 3.0 + 4.0 = 7.0 beats (4, 5) 2.0 + 5.0 = 7.0 by rank (start 2 ranks first).
    assert best_window_span(start, end, in_context, max_answer_length=3) == (7.0, 2, 3)
    # Only the 1 best start (2) and end (5) are candidates: 5 - 2 + 1 = 4 tokens > 2: none.
    assert best_window_span(start, end, in_context, n_best=1, max_answer_length=2) is None
    assert best_window_span(start, end, np.zeros(6, bool)) is None


# ----- distillation ---------------------------------------------------------------------


def _backbone(cls, seed):
    tf.keras.utils.set_random_seed(seed)
    return cls(30, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=8)


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def test_span_distillation_loss_against_numpy():
    """hard = mean over start/end of the mean CE of the positions; soft = mean over start/end of
    T^2 KL(softmax(t/T) || softmax(s/T)); both softmaxes over the real tokens only."""
    teacher = SpanQA(_backbone(BertBackbone, 1))
    student = SpanQA(_backbone(DistilBertBackbone, 2))
    for model in (teacher, student):  # logits spread apart: a soft loss well above float32 rounding
        kernel = model.head_layers["qa_outputs"].kernel
        kernel.assign(kernel * 20.0)
    alpha, temperature = 0.3, 2.5
    distiller = Distiller(teacher, student, alpha=alpha, temperature=temperature)
    assert isinstance(distiller.output_comparison, SpanPositions)  # the default for SpanQA
    rng = np.random.default_rng(0)
    mask = np.array([[1] * 8, [1] * 5 + [0] * 3, [1] * 6 + [0] * 2], np.int32)
    x = {"token_ids": tf.constant(rng.integers(5, 30, (3, 8)) * mask, tf.int32),
         "segment_ids": tf.zeros((3, 8), tf.int32), "padding_mask": tf.constant(mask)}
    y = {"start_logits": tf.constant([3, 0, 4]), "end_logits": tf.constant([5, 0, 4])}
    t_out, s_out = teacher(x), student(x)
    terms = distiller.compute_loss_terms(x, y, None, {"logits": t_out}, {"logits": s_out})
    hard, soft = [], []
    for key in ("start_logits", "end_logits"):
        ce, kl = [], []
        for row in range(3):
            n = mask[row].sum()
            t = np.asarray(t_out[key], np.float64)[row, :n]
            s = np.asarray(s_out[key], np.float64)[row, :n]
            ce.append(-_log_softmax(s)[int(y[key][row])])
            pt, ps = _log_softmax(t / temperature), _log_softmax(s / temperature)
            kl.append(temperature ** 2 * np.sum(np.exp(pt) * (pt - ps)))
        hard.append(np.mean(ce))
        soft.append(np.mean(kl))
    assert np.mean(soft) > 0.05
    np.testing.assert_allclose(float(terms["hard_loss"]), np.mean(hard), rtol=1e-5)
    np.testing.assert_allclose(float(terms["soft_loss"]), np.mean(soft), rtol=1e-5)
    np.testing.assert_allclose(float(terms["loss"]), alpha * np.mean(hard) + (1 - alpha) * np.mean(soft), rtol=1e-5)


def test_cached_teacher_logits_of_span_outputs_give_the_same_losses():
    teacher = SpanQA(_backbone(BertBackbone, 3))
    student = SpanQA(_backbone(DistilBertBackbone, 4))
    rng = np.random.default_rng(1)
    x = {"token_ids": rng.integers(5, 30, (6, 8)).astype(np.int32), "segment_ids": np.zeros((6, 8), np.int32),
         "padding_mask": np.ones((6, 8), np.int32)}
    y = {"start_logits": rng.integers(0, 8, 6).astype(np.int32), "end_logits": rng.integers(0, 8, 6).astype(np.int32)}
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    cached = cache_teacher_outputs(teacher, ds)
    first = next(iter(cached))[0]["teacher_logits"]
    assert set(first) == {"start_logits", "end_logits"}
    results = []
    for data in (ds, cached):
        distiller = Distiller(teacher, student, alpha=0.5, temperature=2.0)
        distiller.compile(optimizer="sgd")
        results.append(distiller.evaluate(data, verbose=0, return_dict=True))
    assert results[0]["soft_loss"] > 0
    for key in ("loss", "hard_loss", "soft_loss"):
        assert results[1][key] == pytest.approx(results[0][key], rel=1e-5), key


# ----- the CLI end to end -----------------------------------------------------------------


def _slice(path, questions):
    """The first `questions` questions of a SQuAD file, in its layout."""
    with open(path, encoding="utf-8") as f:
        root = json.load(f)
    out, count = [], 0
    for art in root["data"]:
        paragraphs = []
        for p in art["paragraphs"]:
            qas = p["qas"][: questions - count]
            if qas:
                paragraphs.append(dict(p, qas=qas))
                count += len(qas)
        if paragraphs:
            out.append(dict(art, paragraphs=paragraphs))
        if count >= questions:
            break
    return {"version": "1.1", "data": out}


def _official_scores(predictions, path):
    """EM and F1 as the official SQuAD v1.1 evaluate script defines them, written here from its
    definitions (independent of tfdistil.tasks.squad_metrics)."""
    def norm(s):
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())

    def f1(p, g):
        p, g = norm(p).split(), norm(g).split()
        same = sum((collections.Counter(p) & collections.Counter(g)).values())
        return 0.0 if same == 0 else 2 * (same / len(p)) * (same / len(g)) / (same / len(p) + same / len(g))

    em = f = n = 0
    with open(path, encoding="utf-8") as fh:
        for art in json.load(fh)["data"]:
            for p in art["paragraphs"]:
                for q in p["qas"]:
                    golds = [a["text"] for a in q["answers"]]
                    em += max(float(norm(predictions[q["id"]]) == norm(g)) for g in golds)
                    f += max(f1(predictions[q["id"]], g) for g in golds)
                    n += 1
    return 100 * em / n, 100 * f / n


def test_finetune_evaluate_predict_and_distill_from_the_cli(tmp_path, shared_data, capsys):
    """A tiny random model, 20 training questions, one epoch: the report's and evaluate's EM/F1
    equal the official definitions recomputed from the written predictions."""
    train, dev = tmp_path / "train.json", tmp_path / "dev.json"
    train.write_text(json.dumps(_slice(shared_data / "squad" / "train.json", 20)), encoding="utf-8")
    dev.write_text(json.dumps(_slice(shared_data / "squad" / "dev.json", 12)), encoding="utf-8")
    runs = tmp_path / "runs"
    common = ["--runs-dir", str(runs), "--precision", "float32", "--verbose", "0", "--batch-size", "8"]
    # No --task: the SQuAD layout is detected.
    assert cli.main(["finetune", "--train", str(train), "--dev", str(dev), "--preset", "bert_tiny", "--num-layers",
                     "1", "--vocabulary-size", "400", "--sequence-length", "64", "--doc-stride", "24",
                     "--max-question-length", "16", "--epochs", "1", "--learning-rate", "1e-3", "--name", "t",
                     *common]) == 0
    run = runs / "t"
    report = json.loads((run / "report.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert report["task"] == config["task"] == "qa"
    assert (config["doc_stride"], config["max_question_length"], config["sequence_length"]) == (24, 16, 64)
    assert "val_f1" in report["histories"]["model"] and "val_exact_match" in report["histories"]["model"]
    capsys.readouterr()
    assert cli.main(["evaluate", "--run", str(run), "--data", str(dev)]) == 0
    result = json.loads(capsys.readouterr().out)
    predictions = json.loads(open(result["predictions"], encoding="utf-8").read())
    assert len(predictions) == result["questions"] == 12
    em, f1 = _official_scores(predictions, dev)
    assert result["exact_match"] == pytest.approx(em) and result["f1"] == pytest.approx(f1)
    assert report["models"][0]["f1"] == pytest.approx(f1) and report["dev_f1"] == pytest.approx(f1)
    # The last epoch's dev F1 (early stopping's monitor) is the one of the restored model (1 epoch).
    assert report["histories"]["model"]["val_f1"][-1] == pytest.approx(f1)
    # Each prediction is a piece of its context.
    contexts = {q["id"]: p["context"] for a in json.loads(dev.read_text())["data"] for p in a["paragraphs"]
                for q in p["qas"]}
    assert all(predictions[qid] in contexts[qid] for qid in predictions)

    # predict: 'question<TAB>context' lines, answers from the context.
    context = "Tom went home to Denver in 1990 after the war."
    assert cli.main(["predict", "--run", str(run), f"who went home?\t{context}", "when?\tIn 1990."]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    answer, score, question = lines[0].split("\t")
    assert answer and answer in context and question == "who went home?" and float(score) == float(score)
    assert cli.main(["predict", "--run", str(run), "no tab here"]) == 2
    assert "question<TAB>context" in capsys.readouterr().err

    # distill: the student reads the teacher's windows (doc stride, question length) from its run.
    assert cli.main(["distill", "--teacher", str(run), "--train", str(train), "--dev", str(dev), "--student-layers",
                     "1", "--epochs", "1", "--no-hard-labels-baseline", "--name", "s", *common]) == 0
    distilled = json.loads((runs / "s" / "report.json").read_text())
    assert [row["model"] for row in distilled["models"]] == ["teacher", "student (distilled)"]
    assert distilled["models"][0]["f1"] == pytest.approx(f1)
    assert json.loads((runs / "s" / "config.json").read_text())["doc_stride"] == 24
    assert {"hard_loss", "soft_loss", "val_f1"} <= set(distilled["histories"]["student (distilled)"])


def test_a_qa_teacher_starts_from_a_hugging_face_checkpoint(tmp_path, shared_data, minilm_dir):
    """`finetune --task qa --hf PATH` builds a span head on the checkpoint (the data's class count
    is not passed to `load_hf`, which refuses one for question answering)."""
    from tfdistil.jobs.teacher import build_teacher
    from tfdistil.tasks import get_task

    task = get_task("qa")
    path = tmp_path / "train.json"
    path.write_text(json.dumps(_slice(shared_data / "squad" / "train.json", 2)), encoding="utf-8")
    data = task.read(str(path), collections.namedtuple("D", "doc_stride max_question_length")(32, 16))
    model, tokenizer = build_teacher(task, data.num_classes, [], hf=str(minilm_dir), sequence_length=64)
    assert isinstance(model, SpanQA) and model.backbone.num_layers == 6
    x, _ = next(iter(task.dataset(data, tokenizer, 2)))
    out = model(x)
    assert out["start_logits"].shape == out["end_logits"].shape == x["token_ids"].shape
