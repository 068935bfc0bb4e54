"""The quality study's table (benchmarks/bench_quality.py): student A's rows come from
bench_real_data's results, every row's mean / spread / share of the teacher is the arithmetic
done here by hand, and rows are listed in the study's order whatever order they ran in."""
import json

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_quality")


def test_student_a_rows_and_the_table(bench, tmp_path):
    real_data = tmp_path / "real_data.json"
    real_data.write_text(json.dumps({"rows": [
        {"task": "sst2", "model": "teacher (MiniLM fine-tuned)", "seed": "-", "score": 0.9},
        {"task": "sst2", "model": "student (distilled)", "seed": 0, "score": 0.88},
        {"task": "sst2", "model": "student (hard labels)", "seed": 0, "score": 0.85},
        {"task": "sst2", "model": "student (distilled)", "seed": 1, "score": 0.89},
        {"task": "conll", "model": "student (distilled)", "seed": 0, "score": 0.5},
    ]}), encoding="utf-8")
    rows = bench.student_a_rows(real_data)
    assert sorted((r["row"], r["seed"], r["accuracy"]) for r in rows) == [
        ("a_distilled", 0, 0.88), ("a_distilled", 1, 0.89), ("a_hard", 0, 0.85)]
    assert bench.student_a_rows(tmp_path / "missing.json") == []

    study = [{"row": "a_t4", "seed": 0, "accuracy": 0.80}, {"row": "a_t4", "seed": 1, "accuracy": 0.86},
             {"row": "a_t4", "seed": 2, "accuracy": 0.83}]
    summary = bench.summarize(rows + study)
    assert summary["a_t4"]["mean"] == pytest.approx((0.80 + 0.86 + 0.83) / 3)
    assert (summary["a_t4"]["min"], summary["a_t4"]["max"], summary["a_t4"]["seeds"]) == (0.80, 0.86, 3)
    table = bench.markdown(summary, teacher_accuracy=0.9).splitlines()
    assert [line.split("|")[1].strip() for line in table[2:]] == ["`a_distilled`", "`a_hard`", "`a_t4`"]
    t4 = table[4].split("|")
    assert t4[3].strip() == "83.00%" and t4[4].strip() == "80.00% – 86.00%" and t4[5].strip() == "3"
    assert t4[6].strip() == f"{0.83 / 0.9:.1%}"  # 92.2%
    assert table[2].split("|")[3].strip() == "88.50%"  # (0.88 + 0.89) / 2


def test_rows_trained_longer_are_rows_of_their_own(bench):
    results = [{"row": "b_hard", "seed": 0, "epochs": 1, "accuracy": 0.81},
               {"row": "b_hard", "seed": 0, "epochs": 3, "accuracy": 0.83},
               {"row": "b_hard", "seed": 1, "epochs": 3, "accuracy": 0.85},
               {"row": "b_distilled", "seed": 0, "epochs": 3, "accuracy": 0.86}]
    summary = bench.summarize(results)
    assert summary["b_hard"]["accuracies"] == [0.81]
    assert summary["b_hard_3ep"]["mean"] == pytest.approx(0.84)
    assert bench.parse_row_key("b_hard_3ep") == ("b_hard", 3) and bench.parse_row_key("a_t4") == ("a_t4", 1)
    table = bench.markdown(summary, teacher_accuracy=0.9).splitlines()
    # study order: B distilled before B hard, one epoch before three
    assert [line.split("|")[1].strip() for line in table[2:]] == ["`b_distilled_3ep`", "`b_hard`", "`b_hard_3ep`"]
    assert table[4].split("|")[2].strip() == "student B, hard labels only, 3 epochs"


def test_every_row_has_a_title_and_augmented_rows_are_distilled(bench):
    # markdown() looks every row up in ROW_TITLES: a row without one would fail after training.
    assert set(bench.ROWS) <= set(bench.ROW_TITLES)
    assert set(bench.AUGMENT_COPIES) <= set(bench.ROWS)
    # Augmented text has no labels: a row trained on hard labels alone could not use it.
    assert all(bench.ROWS[row][1]["alpha"] < 1.0 for row in bench.AUGMENT_COPIES)
