"""benchmarks/bench_qa.py's arithmetic against numbers worked out by hand: spreads over seeds, the
student's share of the teacher's F1, the distilled gain and which targets count as met, the
full-epoch extrapolation, and the question subsets."""
import json

import pytest

from conftest import load_benchmark

bench = load_benchmark("bench_qa")


def _row(model, f1, em, seed=None, setting="q2000_len384_ep2", questions=2000, train_time=None, wall=60.0):
    return {"setting": setting, "questions": questions, "sequence_length": 384, "epochs": 2, "model": model,
            "seed": seed, "student_epochs": None if seed is None else 2, "exact_match": em, "f1": f1,
            "parameters": 1, "train_questions": questions, "dev_questions": 500, "run_wall_time_s": wall,
            "train_time_s": train_time, "run": f"{setting}_{'teacher' if seed is None else f'seed{seed}'}"}


def test_summary_by_hand():
    rows = [_row("teacher", 60.0, 50.0, wall=600.0)]
    # Three seeds: distilled F1 57, 58, 59 (mean 58, sample std 1); hard labels 55, 56, 57 (mean 56).
    for seed, (d, h) in enumerate([(57.0, 55.0), (58.0, 56.0), (59.0, 57.0)]):
        rows += [_row("distilled", d, d - 10, seed, train_time=100.0 + seed, wall=300.0),
                 _row("hard labels", h, h - 10, seed, train_time=50.0, wall=300.0)]
    s = bench.summarize(rows)["q2000_len384_ep2"]
    assert s["teacher_f1"] == 60.0 and s["teacher_met"] is False  # 60 < 65
    assert s["distilled"]["f1"] == {"mean": 58.0, "std": 1.0, "min": 57.0, "max": 59.0, "n": 3}
    assert s["hard labels"]["exact_match"]["mean"] == pytest.approx(46.0)
    assert s["distilled"]["train_time_s"]["mean"] == pytest.approx(101.0)
    assert s["distilled_share"] == pytest.approx(58.0 / 60.0)  # 96.7 % >= 95 %
    assert s["student_share_met"] is True
    assert s["distilled_gain_f1"] == pytest.approx(2.0) and s["distilled_gain_met"] is True
    # One teacher run and three distill runs (each holding both students) of 600 + 3 x 300 s.
    assert s["total_wall_time_s"] == pytest.approx(1500.0)


def test_gain_needs_three_seeds_and_share_can_fail():
    rows = [_row("teacher", 70.0, 60.0), _row("distilled", 63.0, 50.0, 0, train_time=1.0),
            _row("hard labels", 60.0, 48.0, 0, train_time=1.0)]
    s = bench.summarize(rows)["q2000_len384_ep2"]
    assert s["teacher_met"] is True
    assert s["distilled_share"] == pytest.approx(0.9) and s["student_share_met"] is False
    assert s["distilled_gain_f1"] == pytest.approx(3.0)
    assert s["distilled_gain_met"] is None  # one seed: not measured, whatever the gap
    assert s["distilled"]["f1"]["std"] == 0.0


def test_teacher_only_settings_are_a_learning_curve():
    rows = [_row("teacher", 30.0, 20.0, setting="q1000_len384_ep2", questions=1000),
            _row("teacher", 45.5, 33.0, setting="q2000_len384_ep2")]
    summary = bench.summarize(rows)
    assert [s["teacher_f1"] for s in summary.values()] == [30.0, 45.5]
    assert summary["q1000_len384_ep2"]["student_share_met"] is None
    text = bench.markdown(summary, rows)
    assert "| 1000 | 384 | 2 | 500 | 20.0 | 30.0 |" in text and "## Students" not in text


def test_extrapolation_by_hand():
    # 20 steps of 16 windows in 96 s: 0.3 s a window; 7,400 windows an epoch: 2,220 s, 2 epochs 4,440 s.
    timing = {"seconds": 96.0, "windows": 320, "full_train_windows": 7400}
    assert bench.extrapolate(timing)["seconds_per_window"] == pytest.approx(0.3)
    assert bench.extrapolate(timing)["estimated_seconds"] == pytest.approx(2220.0)
    assert bench.extrapolate(timing, epochs=2)["estimated_seconds"] == pytest.approx(4440.0)


def test_subset_takes_the_first_questions_in_file_order(tmp_path):
    src = tmp_path / "src.json"
    qa = [{"id": f"q{i}", "question": "?", "answers": [{"text": "a", "answer_start": 0}]} for i in range(5)]
    src.write_text(json.dumps({"version": "1.1", "data": [
        {"title": "A", "paragraphs": [{"context": "a b", "qas": qa[:2]}, {"context": "a c", "qas": qa[2:3]}]},
        {"title": "B", "paragraphs": [{"context": "a d", "qas": qa[3:]}]}]}))
    assert bench.subset_squad(src, 3, tmp_path / "three.json") == 3
    three = json.loads((tmp_path / "three.json").read_text())
    assert [a["title"] for a in three["data"]] == ["A"]
    assert [q["id"] for p in three["data"][0]["paragraphs"] for q in p["qas"]] == ["q0", "q1", "q2"]
    assert bench.subset_squad(src, 0, tmp_path / "all.json") == 5
    assert bench.subset_squad(src, 99, tmp_path / "more.json") == 5
