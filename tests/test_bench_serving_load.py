"""benchmarks/bench_serving_load.py: its summary arithmetic against numbers worked out by hand,
and its load loop on a stand-in `serve` (no model: the loop's counting, not TensorFlow)."""
import pytest

from conftest import load_benchmark

bench = load_benchmark("bench_serving_load")
MB = 1024 * 1024


def test_nearest_rank_percentiles_by_hand():
    # 1..100 ms: the 50th percentile is the 50th smallest value, the 99th the 99th.
    values = [i / 1000 for i in range(100, 0, -1)]  # unsorted on purpose
    assert bench.percentile(values, 50) == 0.050
    assert bench.percentile(values, 99) == 0.099
    assert bench.percentile(values, 100) == 0.100
    # 7 values: rank ceil(0.5 * 7) = 4 -> 4th smallest; ceil(0.99 * 7) = 7 -> the largest.
    seven = [5, 1, 7, 3, 2, 6, 4]
    assert bench.percentile(seven, 50) == 4 and bench.percentile(seven, 99) == 7
    assert bench.percentile([9], 50) == bench.percentile([9], 99) == 9


def test_summary_by_hand():
    # 4 requests of 10, 20, 30, 40 ms in 0.5 s: 8 requests/s; p50 = 2nd smallest = 20 ms,
    # p99 = ceil(3.96) = 4th = 40 ms. RSS 100 MB -> 130 MB: +30 MB, inside a 50 MB bound.
    summary = bench.summarize([0.04, 0.01, 0.03, 0.02], 0, 0.5, 100 * MB, 130 * MB, 50)
    assert summary["requests"] == 4 and summary["errors"] == 0
    assert summary["requests_per_s"] == pytest.approx(8.0)
    assert summary["p50_ms"] == pytest.approx(20.0) and summary["p99_ms"] == pytest.approx(40.0)
    assert summary["max_ms"] == pytest.approx(40.0)
    assert (summary["rss_start_mb"], summary["rss_end_mb"]) == (100.0, 130.0)
    assert summary["rss_growth_mb"] == pytest.approx(30.0) and summary["rss_within_bound"] is True
    over = bench.summarize([0.001], 2, 1.0, 100 * MB, 151 * MB, 50)
    assert over["rss_growth_mb"] == pytest.approx(51.0) and over["rss_within_bound"] is False
    assert over["errors"] == 2 and over["requests_per_s"] == pytest.approx(1.0)


class FakeTensor:
    def __init__(self, rows):
        self.shape = (rows,)


class Probabilities:
    def __init__(self, array):
        self._array = array

    def numpy(self):
        return self._array


def test_load_loop_counts_every_request_once_and_flags_bad_outputs():
    import numpy as np

    calls = []

    def serve(text):
        calls.append(text)
        if len(calls) % 10 == 0:
            raise RuntimeError("a failed request")
        if len(calls) % 10 == 5:
            return {"probabilities": Probabilities(np.array([[0.5, 0.6]]))}  # does not sum to 1
        return {"probabilities": Probabilities(np.array([[0.25, 0.75]]))}

    latencies, errors, wall, samples = bench.run_load(serve, [FakeTensor(1)], threads=3, requests=2000, seconds=0)
    assert len(calls) == len(latencies) == 2000
    assert errors == 200 + 200 and wall > 0
    assert [n for n, _ in samples] == [1000, 2000]
