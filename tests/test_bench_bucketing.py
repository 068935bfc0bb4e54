"""benchmarks/bench_bucketing.py on a tiny SST-2 stand-in: the epochs it times and what it counts."""
import json

import pytest

from conftest import load_benchmark


# "good" x n -> n + 2 tokens with [CLS] and [SEP]; 24 sentences, batches of 8.
WORDS = [1, 2, 3, 20, 5, 40, 2, 1] * 3


def run_benchmark(tmp_path, *extra):
    (tmp_path / "sst2").mkdir()
    rows = "".join(f"{' '.join(['good'] * n)}\t{i % 2}\n" for i, n in enumerate(WORDS))
    (tmp_path / "sst2" / "train.tsv").write_text("sentence\tlabel\n" + rows)
    out = tmp_path / "bucketing.json"
    load_benchmark("bench_bucketing").main([
        "--data-dir", str(tmp_path), "--preset", "bert_tiny", "--batch-size", "8", "--precision", "float32",
        "--warmup-steps", "1", "--output", str(out), *extra,
    ])
    return json.loads(out.read_text())


def test_bucketing_benchmark_times_four_epochs_and_counts_tokens(tmp_path):
    words = WORDS
    result = run_benchmark(tmp_path)
    runs = result["results"]
    assert sorted(runs) == ["bucketed", "bucketed_skip", "fixed_128", "fixed_128_skip"]
    real = sum(n + 2 for n in words)
    for name, run in runs.items():
        assert run["real_tokens"] == real, name
        assert run["skip_padding"] == name.endswith("_skip")
        assert run["steps"] == run["batches"] >= 3
    assert runs["fixed_128"]["positions_computed"] == runs["fixed_128_skip"]["positions_computed"] == 24 * 128
    assert runs["bucketed"]["positions_computed"] < 24 * 64  # no batch is wider than its bucket (<= 64)
    s = result["summary"]
    assert s["speedup_epoch_wall_time"] == pytest.approx(
        runs["fixed_128"]["epoch_wall_time_s"] / runs["bucketed"]["epoch_wall_time_s"])
    assert s["speedup_bucketing_when_skipping"] == pytest.approx(
        runs["fixed_128_skip"]["epoch_wall_time_s"] / runs["bucketed_skip"]["epoch_wall_time_s"])
    assert s["speedup_skip_padding_fixed_128"] == pytest.approx(
        runs["fixed_128"]["epoch_wall_time_s"] / runs["fixed_128_skip"]["epoch_wall_time_s"])


def test_bucketing_benchmark_without_the_skip_padding_epochs(tmp_path):
    # What `bench_peers.py` runs: the two epochs only.
    result = run_benchmark(tmp_path, "--limit", "16", "--no-skip-padding-epochs")
    assert result["sentences"] == 16 and sorted(result["results"]) == ["bucketed", "fixed_128"]
    assert all(not run["skip_padding"] for run in result["results"].values())
    s = result["summary"]
    assert "speedup_skip_padding_bucketed" not in s
    assert s["speedup_epoch_wall_time"] == pytest.approx(
        result["results"]["fixed_128"]["epoch_wall_time_s"] / result["results"]["bucketed"]["epoch_wall_time_s"])
