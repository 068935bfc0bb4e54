"""The quick-start seed study's arithmetic (benchmarks/bench_quickstart_seeds.py) on rows worked
by hand: the teacher's spread and floor, the mean gap and the wins, and each target's verdict."""
import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_quickstart_seeds")


def row(seed, teacher, distilled, hard, seconds=200.0):
    return {"seed": seed, "teacher": teacher, "distilled": distilled, "hard_labels": hard,
            "gap": distilled - hard, "wall_time_s": seconds}


def test_summary_by_hand(bench):
    rows = [row(0, 95.0, 93.0, 90.0), row(1, 96.5, 92.0, 92.5), row(2, 94.0, 94.0, 91.0, seconds=310.0)]
    s = bench.summarize(rows)
    assert s["teacher_spread"] == pytest.approx(2.5)  # 96.5 - 94.0
    assert s["teacher_min"] == 94.0
    assert s["mean_gap"] == pytest.approx((3.0 - 0.5 + 3.0) / 3)
    assert s["wins"] == 2
    assert s["max_wall_time_s"] == 310.0
    verdicts = list(s["targets"].values())
    # spread 2.5 <= 3: met; min 94 >= 90: met; gap 1.83 < 2: missed; 2 wins < 4: missed; 310 s > 300: missed.
    assert verdicts == [True, True, False, False, False]


def test_a_low_teacher_and_a_wide_spread_are_missed(bench):
    rows = [row(s, t, 95.0, 92.0) for s, t in enumerate([89.9, 93.0, 93.1, 92.0])]
    s = bench.summarize(rows)
    assert s["teacher_spread"] == pytest.approx(3.2)
    targets = s["targets"]
    assert targets["teacher spread <= 3 points"] is False
    assert targets["no teacher below 90 %"] is False
    assert targets["mean gap >= 2 points"] is True
    assert targets["distilled ahead on >= 4 seeds"] is True


def test_seed_row_reads_the_report(bench):
    report = {"wall_time_s": 123.0, "models": [
        {"model": "teacher", "accuracy": 0.95}, {"model": "student (distilled)", "accuracy": 0.93},
        {"model": "student (hard labels)", "accuracy": 0.9}]}
    r = bench.seed_row(4, report)
    assert (r["seed"], r["teacher"], r["distilled"], r["hard_labels"]) == (4, 95.0, 93.0, 90.0)
    assert r["gap"] == pytest.approx(3.0)


def test_settings_parse_as_json_values(bench):
    assert bench.parse_settings(["teacher-epochs=20", "alpha=0.3", "preset=bert_mini"]) == {
        "teacher_epochs": 20, "alpha": 0.3, "preset": "bert_mini"}
    with pytest.raises(SystemExit):
        bench.parse_settings(["alpha"])
