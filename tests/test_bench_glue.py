"""The GLUE benchmark's arithmetic (benchmarks/bench_glue.py): rows read from run reports, the
mean / sample spread / share of the teacher / targets of each task, the markdown table, and the
merge that keeps finished tasks; every expected number worked out by hand."""
import json

import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_glue")


def write_report(run_dir, report):
    run_dir.mkdir(parents=True)
    (run_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")


def student_report(seed, distilled_f1, hard_f1, wall):
    def row(model, f1, time):
        return {"model": model, "accuracy": 0.8, "f1": f1, "mcc": 0.5, "parameters": 100, "train_time_s": time,
                "speedup_batch32": 2.0}

    return {"wall_time_s": wall, "augmented_examples": 7,
            "models": [{"model": "teacher", "f1": 0.9}, row("student (distilled)", distilled_f1, 60.0 + seed),
                       row("student (hard labels)", hard_f1, 30.0)]}


@pytest.fixture()
def mrpc_runs(tmp_path):
    write_report(tmp_path / "mrpc_teacher", {
        "train_examples": 3668, "dev_examples": 408, "wall_time_s": 600.0,
        "models": [{"model": "model", "accuracy": 0.85, "f1": 0.90, "mcc": 0.6, "parameters": 200}]})
    for seed, (d, h) in enumerate([(0.88, 0.86), (0.87, 0.88), (0.89, 0.87)]):
        write_report(tmp_path / f"mrpc_seed{seed}", student_report(seed, d, h, 120.0))
    return tmp_path


def test_rows_and_summary_by_hand(bench, mrpc_runs):
    rows = bench.rows_of("MRPC", mrpc_runs, [0, 1, 2, 3])  # seed 3 has no run: left out
    assert [(r["model"], r["seed"], r["score"]) for r in rows] == [
        ("teacher", None, 0.90), ("distilled", 0, 0.88), ("hard labels", 0, 0.86), ("distilled", 1, 0.87),
        ("hard labels", 1, 0.88), ("distilled", 2, 0.89), ("hard labels", 2, 0.87)]
    assert rows[1]["augmented_examples"] == 7 and rows[2]["augmented_examples"] == 0
    (mrpc_runs / "mrpc_seed7").mkdir()  # unfinished: no report.json
    assert bench.finished_seeds("MRPC", mrpc_runs) == [0, 1, 2] and bench.rows_of("MRPC", mrpc_runs) == rows
    assert rows[1]["train_time_s"] == 60.0 and rows[0]["run_wall_time_s"] == 600.0
    summary = bench.summarize(rows)["MRPC"]
    # distilled 0.88, 0.87, 0.89: mean 0.88, sample std sqrt((0 + 1e-4 + 1e-4) / 2) = 0.01
    assert summary["distilled"]["mean"] == pytest.approx(0.88)
    assert summary["distilled"]["std"] == pytest.approx(0.01)
    assert (summary["distilled"]["min"], summary["distilled"]["max"], summary["distilled"]["n"]) == (0.87, 0.89, 3)
    assert summary["hard labels"]["mean"] == pytest.approx((0.86 + 0.88 + 0.87) / 3)  # 0.87
    assert summary["distilled_share"] == pytest.approx(0.88 / 0.90)  # 97.8% >= 97%
    assert summary["student_share_met"] is True and summary["distilled_ge_hard"] is True
    assert summary["teacher_met"] is True  # 0.90 >= 0.88
    assert summary["distilled train_time_s"]["mean"] == pytest.approx(61.0)  # 60, 61, 62
    # the teacher's run and three distillation runs
    assert summary["total_wall_time_s"] == pytest.approx(600.0 + 3 * 120.0)


def test_targets_missed_and_tasks_without_a_share_target(bench):
    rows = [{"task": "RTE", "model": "teacher", "seed": None, "metric": "accuracy", "score": 0.60,
             "run_wall_time_s": 10.0, "train_time_s": None, "run": "rte_teacher"},
            {"task": "RTE", "model": "distilled", "seed": 0, "metric": "accuracy", "score": 0.55,
             "run_wall_time_s": 5.0, "train_time_s": 3.0, "run": "rte_seed0"},
            {"task": "RTE", "model": "hard labels", "seed": 0, "metric": "accuracy", "score": 0.57,
             "run_wall_time_s": 5.0, "train_time_s": 2.0, "run": "rte_seed0"}]
    summary = bench.summarize(rows)["RTE"]
    assert summary["teacher_met"] is False  # 0.60 < 0.63
    assert "student_share_met" not in summary  # RTE: report only
    assert summary["distilled_ge_hard"] is False and summary["distilled"]["std"] == 0.0
    assert summary["total_wall_time_s"] == 15.0  # one distillation run holds both students


def test_markdown_table(bench, mrpc_runs):
    rows = bench.rows_of("MRPC", mrpc_runs, [0, 1, 2])
    text = bench.markdown(bench.summarize(rows), rows)
    lines = text.splitlines()
    head = lines.index("| model | MRPC F1 |")
    assert lines[head + 2] == "| teacher (all-MiniLM-L6-v2 fine-tuned) | 90.0 |"
    assert lines[head + 3] == "| student, distilled | 88.0 ± 1.0 (87.0–89.0), 3 seeds |"
    assert lines[head + 4] == "| student, hard labels | 87.0 ± 1.0 (86.0–88.0), 3 seeds |"
    assert lines[head + 5] == "| distilled / teacher | 97.8% |"
    one_seed = bench.markdown(bench.summarize(rows[:3]), rows[:3]).splitlines()
    assert one_seed[head + 3] == "| student, distilled | 88.0 (1 seed) |"
    assert "| MRPC | F1 ≥ 88.0 | 90.0 | yes | ≥ 97% of the teacher | yes | yes |" in lines
    assert "Distilled ≥ hard labels (mean over seeds) on 1 of 1 tasks (target: at least 3 of 4)." in lines
    assert "| MRPC | distilled | 0 | f1 0.8800 | accuracy 0.8000, f1 0.8800, mcc 0.5000 | 1.0 min | 2.0 min |" in lines
    assert "Total wall time of the runs: 16 min (2 shared CPU cores)." in lines  # (600 + 360) s


def test_results_keep_finished_tasks(bench, mrpc_runs, tmp_path):
    stem = tmp_path / "out" / "glue"
    stem.parent.mkdir()
    rows = bench.rows_of("MRPC", mrpc_runs, [0])
    bench.write_results(stem, rows, {"MRPC": {"seeds": [0]}})
    cola = [{"task": "CoLA", "model": "teacher", "seed": None, "metric": "mcc", "score": 0.4,
             "run_wall_time_s": 1.0, "train_time_s": None, "run": "cola_teacher"}]
    bench.write_results(stem, cola, {"CoLA": {"seeds": []}})
    result = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    assert [r["task"] for r in result["rows"]] == ["MRPC", "MRPC", "MRPC", "CoLA"]
    assert set(result["summary"]) == {"MRPC", "CoLA"} and set(result["settings"]) == {"MRPC", "CoLA"}
    assert result["summary"]["CoLA"]["teacher_met"] is True  # 0.40 >= 0.35
    assert "| model | MRPC F1 | CoLA MCC |" in stem.with_suffix(".md").read_text(encoding="utf-8")


def test_steps_are_the_library_commands(bench, tmp_path):
    out = bench.steps("STS-B", tmp_path / "train.tsv", tmp_path / "dev.tsv", tmp_path, [0, 1], quick=True)
    assert [run.name for run, _ in out] == ["stsb_teacher", "stsb_seed0", "stsb_seed1"]
    teacher, student = out[0][1], out[1][1]
    assert teacher[0] == "finetune" and teacher[teacher.index("--epochs") + 1] == "1"
    assert student[0] == "distill" and student[student.index("--teacher") + 1] == str(tmp_path / "stsb_teacher")
    for flag, value in (("--layer-map", "0,2,4"), ("--student-layers", "3"), ("--precision", "mixed_bfloat16"),
                        ("--epochs", "1"), ("--seed", "0")):
        assert student[student.index(flag) + 1] == value
    assert "--cache-teacher-logits" in student


def test_quick_data_keeps_the_header_and_the_first_rows(bench, tmp_path):
    source = tmp_path / "data" / "glue" / "MRPC"
    source.mkdir(parents=True)
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n".encode("utf-8")
    rows = [f"1\t{i}\t{i}\ta \"{i}\"\tb {i}\n".encode("utf-8") for i in range(300)]
    for name in ("train.tsv", "dev.tsv"):
        (source / name).write_bytes(header + b"".join(rows))
    train, dev = bench.quick_data(tmp_path / "data", "MRPC", tmp_path / "quick")
    # 200 training and 100 dev rows after the header, byte for byte (BOM and quotes kept)
    assert train.read_bytes() == header + b"".join(rows[:200])
    assert dev.read_bytes() == header + b"".join(rows[:100])
