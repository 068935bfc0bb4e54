"""`tfdistil benchmark`: every model of a run timed side by side; the arithmetic of the
table (throughput, speed-up) checked by hand from the JSON it writes."""
import json

import pytest

from tfdistil import cli
from tfdistil.models import BertBackbone, DistilBertBackbone, TextClassifier

SIZES = dict(vocabulary_size=60, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=32)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    (run / "models").mkdir()
    teacher = TextClassifier(BertBackbone(num_layers=2, **SIZES), 2, name="teacher")
    student = TextClassifier(DistilBertBackbone(num_layers=1, **SIZES), 2, name="student_distilled")
    teacher.save(run / "models" / "teacher.keras")
    student.save(run / "models" / "student_distilled.keras")
    return run, {"teacher": teacher.count_params(), "student_distilled": student.count_params()}


def test_benchmark_times_every_model_against_the_teacher(run_dir, capsys):
    run, params = run_dir
    assert cli.main(["benchmark", "--run", str(run), "--batch-sizes", "1,4", "--sequence-length", "16",
                     "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    result = json.loads((run / "benchmark.json").read_text())
    assert [r["model"] for r in result["models"]] == ["teacher", "student_distilled"]  # teacher first
    teacher = result["models"][0]
    for row in result["models"]:
        assert row["parameters"] == params[row["model"]]
        for b in (1, 4):
            ms = row[f"latency_ms_batch{b}"]
            assert ms > 0
            assert row[f"examples_per_s_batch{b}"] == pytest.approx(1000.0 * b / ms)
            assert row[f"speedup_batch{b}"] == pytest.approx(teacher[f"latency_ms_batch{b}"] / ms)
        assert f"| {row['model']} | {row['parameters']:,} |" in out
    assert teacher["speedup_batch1"] == 1.0


@pytest.mark.parametrize("argv, message", [
    (["--batch-sizes", "1,x"], "--batch-sizes must be comma-separated integers"),
    (["--sequence-length", "64"], "exceeds teacher's max_sequence_length 32"),
])
def test_benchmark_user_errors(run_dir, capsys, argv, message):
    run, _ = run_dir
    assert cli.main(["benchmark", "--run", str(run), "--repeats", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_benchmark_of_a_run_without_models(tmp_path, capsys):
    assert cli.main(["benchmark", "--run", str(tmp_path)]) == 2
    assert "has no models/*.keras" in capsys.readouterr().err
