"""The committed peer results are reproduced by their command: `bench_peers.py --rederive` rewrites
peers.json / peers_machine2.json and their markdown byte for byte from the timed rows; and the
script's flags become the options it measures (no KerasHub or PyTorch needed: nothing is timed)."""
import shutil

import pytest

from conftest import REPO_ROOT, load_benchmark

RESULTS = REPO_ROOT / "benchmarks" / "results"


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_peers")


@pytest.mark.parametrize("name", ["peers", "peers_machine2"])
def test_committed_results_rederive_byte_for_byte(bench, tmp_path, name, monkeypatch, capsys):
    monkeypatch.setattr(bench.peers, "run_peers", lambda options: pytest.fail("--rederive timed something"))
    result, markdown = tmp_path / f"{name}.json", tmp_path / f"{name}.md"
    shutil.copy(RESULTS / f"{name}.json", result)
    bench.main(["--rederive", str(result), "--markdown", str(markdown)])
    assert result.read_bytes() == (RESULTS / f"{name}.json").read_bytes()
    assert markdown.read_bytes() == (RESULTS / f"{name}.md").read_bytes()
    assert f"rewrote {result} and {markdown}" in capsys.readouterr().out


def test_script_flags_become_the_options_it_measures(bench, tmp_path, monkeypatch, capsys):
    seen = []

    def fake(options):
        seen.append(options)
        return {"markdown": "| table |", "wall_time_s": 60.0}

    monkeypatch.setattr(bench.peers, "run_peers", fake)
    out, md = tmp_path / "p.json", tmp_path / "p.md"
    bench.main(["--quick", "--batch", "1,4", "--output", str(out), "--markdown", str(md)])
    (options,) = seen
    # --quick's smoke settings, with the flags given on top of them.
    assert options.models == options.train_models == ("bert_mini",) and options.rounds == 1
    assert options.batch_sizes == (1, 4) and options.sequence_lengths == (64,)
    assert (options.output, options.markdown) == (str(out), str(md))
    assert options.bucketing_limit == 0 and options.real_sentences == 0
    assert options.command == f"python benchmarks/bench_peers.py --quick --batch 1,4 --output {out} --markdown {md}"
    printed = capsys.readouterr().out
    assert "| table |" in printed and f"wrote {out} and {md} (1.0 min)" in printed

    # Without --quick: the full run's defaults; --models also picks the trained models unless
    # --train-models says otherwise ("none": no training rows).
    options = bench.parse(["--models", "bert_tiny", "--seq", "32", "--policies", "float32"])
    assert options.models == options.train_models == ("bert_tiny",) and options.sequence_lengths == (32,)
    assert options.batch_sizes == (1, 8, 32) and options.rounds == 3 and options.policies == ("float32",)
    assert options.output == "benchmarks/results/peers.json"
    assert bench.parse(["--models", "bert_tiny", "--train-models", "none"]).train_models == ()
    assert bench.parse(["--train-models", "bert_mini"]).models == ("bert_base", "distilbert_base", "bert_mini")
