"""The optimizer seed study's arithmetic (benchmarks/bench_optimizer_seeds.py) against
scipy: the paired t statistic, the sign test, and the per-update spread."""
import numpy as np
import pytest
from scipy import stats

from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_optimizer_seeds")


def test_parse_seeds(bench):
    assert bench.parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert bench.parse_seeds("5") == [5]


def test_summary_matches_scipy(bench):
    rng = np.random.default_rng(3)
    fused = rng.uniform(0.7, 1.0, 10).round(3)
    keras = rng.uniform(0.7, 1.0, 10).round(3)
    keras[4] = fused[4]  # a tie: left out of the sign test
    rows = [{"seed": s, "update": "fused", "best_val_accuracy": float(f)} for s, f in enumerate(fused)]
    rows += [{"seed": s, "update": "keras", "best_val_accuracy": float(k)} for s, k in enumerate(keras)]
    rows.append({"seed": 99, "update": "fused", "best_val_accuracy": 0.5})  # unpaired: ignored
    summary = bench.summarize(rows)
    assert summary["paired_seeds"] == 10
    assert summary["paired_t"] == pytest.approx(stats.ttest_rel(fused, keras).statistic)
    assert summary["mean_difference_fused_minus_keras"] == pytest.approx(np.mean(fused - keras))
    wins, losses = int(np.sum(fused > keras)), int(np.sum(fused < keras))
    assert (summary["fused_better"], summary["keras_better"], summary["ties"]) == (wins, losses, 1)
    assert summary["sign_test_p"] == pytest.approx(stats.binomtest(wins, wins + losses).pvalue)
    assert summary["keras"]["sd"] == pytest.approx(np.std(keras, ddof=1))
    assert summary["fused"]["median"] == pytest.approx(np.median(fused))
    assert bench.summarize(rows[:3]) == {"paired_seeds": 0}
