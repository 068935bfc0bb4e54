"""benchmarks/bench_weight_casts.py on bert_tiny: two exports of one mixed_bfloat16 model, served
in a fresh process."""
import json
import statistics

from conftest import load_benchmark


def test_cast_export_is_smaller_stores_bfloat16_and_serves_the_same(tmp_path):
    (tmp_path / "sst2").mkdir()
    rows = ["a gripping , funny film .", "dull", "the film is good", "not a good film at all"]
    (tmp_path / "sst2" / "dev.tsv").write_text("sentence\tlabel\n" + "".join(f"{t}\t1\n" for t in rows))
    out = tmp_path / "weight_casts.json"
    load_benchmark("bench_weight_casts").main(["--preset", "bert_tiny", "--batch-sizes", "1,4", "--rounds", "3",
                                               "--data-dir", str(tmp_path), "--output", str(out)])
    result = json.loads(out.read_text())
    # bert_tiny: 2 blocks x (QKV, attention output, two feed-forward) kernels and biases = 16.
    assert result["stored_dtypes"]["cast"]["bfloat16"] == 16
    assert "bfloat16" not in result["stored_dtypes"]["float32"]
    assert sum(result["stored_dtypes"]["cast"].values()) == sum(result["stored_dtypes"]["float32"].values())
    assert result["size_mb"]["cast"] < result["size_mb"]["float32"]
    assert result["serving"]["max_probability_difference"] == 0.0
    for row in result["summary"]:
        rounds = {v: result["serving"]["seconds"][v][str(row["batch_size"])] for v in ("cast", "float32")}
        assert len(rounds["cast"]) == len(rounds["float32"]) == 3
        assert row["speedup"] == statistics.median(rounds["float32"]) / statistics.median(rounds["cast"])
    assert [row["batch_size"] for row in result["summary"]] == [1, 4]
