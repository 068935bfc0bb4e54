"""`tfdistil export`: a run's model as a TF Serving SavedModel, a TFLite file or a
Hugging Face folder.

    saved_model  OUT/NAME/<version>/   OUT default saved_models (TF Serving's model_base_path is OUT/NAME)
    tflite       OUT/NAME.tflite       OUT default exports; an OUT ending in .tflite is the file itself.
                 Beside it: NAME.vocab.txt and NAME.json (inputs, sequence length, labels)
    hf           OUT/                  the Hugging Face folder itself; default exports/NAME_hf

NAME defaults to the run folder's name.
"""
import json
import os
from pathlib import Path

from tfdistil.jobs.pipeline import STUDENT_FILES
from tfdistil.jobs.runs import (
    RunError,
    check_run_dir,
    load_run_label_names,
    load_run_model,
    load_run_tokenizer,
    run_config,
)

FORMATS = ("saved_model", "tflite", "hf")
DEFAULT_OUT = {"saved_model": "saved_models", "tflite": "exports", "hf": "exports"}
# report.json keys copied to the SavedModel's model card as metrics (besides the task's `dev_<metric>`).
_COUNT_KEYS = ("dev_examples", "train_examples")


def _model_card(run_dir, model_name):
    """{"metrics": ..., "run": ..., "model": ...} from the run's report.json (if any)."""
    card = {"run": str(run_dir), "model": model_name}
    path = os.path.join(run_dir, "report.json")
    if not os.path.isfile(path):
        return card
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    metrics = {k: v for k, v in report.items()
               if k in _COUNT_KEYS or (k.startswith("dev_") and isinstance(v, (int, float)))}
    # A distillation run reports one row per model ("student (distilled)" for
    # models/student_distilled.keras): take this model's numbers.
    rows = {file: label for label, file in STUDENT_FILES.items()}
    labels = {model_name, model_name.replace("_", " "), rows.get(model_name)}
    for row in report.get("models") or []:
        if isinstance(row, dict) and row.get("model") in labels:
            metrics.update({k: v for k, v in row.items()
                            if k != "model" and isinstance(v, (int, float)) and not isinstance(v, bool)})
    if metrics:
        card["metrics"] = metrics
    teacher = report.get("teacher")
    if model_name.startswith("student") and isinstance(teacher, dict):
        card["distilled from"] = (
            f"{teacher.get('source')} ({teacher.get('num_layers')} layers, {teacher.get('parameters'):,} parameters), "
            f"student layers initialised from teacher layers {report.get('layer_map')}"
        )
    return card


def _pairs(run_dir):
    """Whether the run's model was trained on sentence pairs (its signature then takes `text_pair`)."""
    recorded = run_config(run_dir)
    return bool(recorded.get("text_pair_column") or recorded.get("text_pairs"))


def export_run(run_dir, format="saved_model", model=None, out=None, name=None, version=None,
               quantize="float32", sequence_length=None):
    """Export a run's model; returns the written path (version folder, .tflite file or HF folder).

    Raises:
        RunError: a missing run/model, options that do not go with `format`, or an export
            the library refuses (its ValueError message).
    """
    check_run_dir(run_dir)
    if format not in FORMATS:
        raise RunError(f"--format {format!r}: must be one of {list(FORMATS)}")
    if quantize != "float32" and format != "tflite":
        raise RunError(f"--quantize {quantize} goes with --format tflite, not {format}")
    if version is not None and format != "saved_model":
        raise RunError(f"--version goes with --format saved_model, not {format}")
    label_names = load_run_label_names(run_dir)
    tokenizer = load_run_tokenizer(run_dir)
    model_name, model_ = load_run_model(run_dir, model)
    from tfdistil.export.saved_model import looks_untrained

    if looks_untrained(model_):
        raise RunError(
            f"{model_name} in {run_dir} looks untrained (every bias and LayerNorm parameter at its initial "
            "value); refusing to export it"
        )
    out_arg = out
    out = Path(out if out is not None else DEFAULT_OUT[format])
    name = name or os.path.basename(os.path.normpath(str(run_dir)))
    try:
        if format == "saved_model":
            from tfdistil.export import export_saved_model

            return export_saved_model(model_, tokenizer, out / name, label_names=label_names, version=version,
                                      model_card=_model_card(run_dir, model_name), pair=_pairs(run_dir))
        if format == "tflite":
            from tfdistil.export import export_tflite

            length = sequence_length or tokenizer.sequence_length
            target = out if out.suffix == ".tflite" else out / f"{name}.tflite"
            path = export_tflite(model_, target, quantize=quantize, sequence_length=length)
            _write_tflite_sidecars(path, tokenizer, label_names, length, quantize)
            return path
        from tfdistil.convert import save_hf

        folder = Path(out_arg) if out_arg is not None else Path(DEFAULT_OUT["hf"]) / f"{name}_hf"
        return save_hf(model_, tokenizer, folder, label_names=label_names)
    except ValueError as error:
        raise RunError(f"cannot export {model_name} of {run_dir}: {error}") from None


def _write_tflite_sidecars(path, tokenizer, label_names, sequence_length, quantize):
    """NAME.vocab.txt and NAME.json beside the .tflite: what a client needs to tokenize."""
    from tfdistil.text import save_vocabulary

    stem = str(path)[: -len(".tflite")]
    save_vocabulary(tokenizer.get_vocabulary(), stem + ".vocab.txt")
    info = {
        "inputs": ["token_ids", "segment_ids", "padding_mask"],
        "input_dtype": "int32",
        "sequence_length": sequence_length,
        "outputs": ["logits"],
        "label_names": None if label_names is None else list(label_names),
        "quantize": quantize,
        "lowercase": tokenizer.lowercase,
        "strip_accents": tokenizer.strip_accents,
        "vocabulary": os.path.basename(stem + ".vocab.txt"),
    }
    with open(stem + ".json", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2)
