"""`tfdistil benchmark`: latency and throughput of every model of a run, side by side."""
import glob
import json
import os

from tfdistil import evaluation
from tfdistil.jobs.runs import RunError, check_run_dir, load_run_model
from tfdistil.report import markdown_table


def benchmark_run(run_dir, batch_sizes=(1, 32), sequence_length=128, repeats=20, output=None):
    """Median latency (ms) and throughput (examples/s) of each `models/*.keras` of the run at
    each batch size, and each model's speed-up over the first one listed (the teacher when
    there is one). Writes JSON (default `RUN_DIR/benchmark.json`) and returns it with a
    markdown `table`."""
    check_run_dir(run_dir)
    names = sorted(os.path.basename(p)[: -len(".keras")] for p in glob.glob(os.path.join(run_dir, "models", "*.keras")))
    if not names:
        raise RunError(f"{run_dir} has no models/*.keras to benchmark")
    if "teacher" in names:
        names.remove("teacher")
        names.insert(0, "teacher")
    if any(b < 1 for b in batch_sizes) or sequence_length < 3 or repeats < 1:
        raise RunError("batch sizes and --repeats must be >= 1 and --sequence-length >= 3")
    rows = []
    for name in names:
        _, model = load_run_model(run_dir, name)
        if sequence_length > model.backbone.max_sequence_length:
            raise RunError(f"--sequence-length {sequence_length} exceeds {name}'s max_sequence_length "
                           f"{model.backbone.max_sequence_length}")
        row = {"model": name, "parameters": int(model.count_params())}
        for b in batch_sizes:
            ms = evaluation.latency_ms(model, b, sequence_length, repeats=repeats)
            row[f"latency_ms_batch{b}"] = ms
            row[f"examples_per_s_batch{b}"] = 1000.0 * b / ms
        rows.append(row)
    for row in rows:
        for b in batch_sizes:
            row[f"speedup_batch{b}"] = rows[0][f"latency_ms_batch{b}"] / row[f"latency_ms_batch{b}"]
    columns = [("model", "model", "{}"), ("parameters", "parameters", "{:,}")]
    for b in batch_sizes:
        columns += [(f"latency_ms_batch{b}", f"latency b={b} (ms)", "{:.2f}"),
                    (f"examples_per_s_batch{b}", f"examples/s b={b}", "{:.0f}"),
                    (f"speedup_batch{b}", f"speed-up b={b}", "{:.2f}x")]
    result = {"run": os.path.basename(os.path.normpath(run_dir)), "sequence_length": sequence_length,
              "repeats": repeats, "batch_sizes": list(batch_sizes), "models": rows}
    output = output or os.path.join(run_dir, "benchmark.json")
    with open(output, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    result["table"] = markdown_table(rows, columns)
    return result
