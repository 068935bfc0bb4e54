"""A run folder: what evaluate/predict/distill need to use a model trained earlier.

    runs/<name>/
      config.json            the job's settings
      vocab.txt              the WordPiece vocabulary
      tokenizer.json         the other `WordPieceTokenizer` arguments (lowercase, sequence_length, ...)
      label_names.json       label strings, in the model's output order (null for regression)
      models/<model>.keras   the trained model(s)
      report.json            results
"""
import json
import os
import zipfile

TOKENIZER_FILE = "tokenizer.json"
LABEL_NAMES_FILE = "label_names.json"
# What `--model` means when it is not given: the fine-tuned model, else the distilled student.
DEFAULT_MODELS = ("model", "student_distilled")
_TOKENIZER_SETTINGS = ("lowercase", "strip_accents", "sequence_length", "pad_to_sequence_length",
                       "pad_to_multiple_of", "cls_token", "sep_token", "pad_token", "unk_token", "mask_token")


class RunError(ValueError):
    """A run folder (or a model in it) is missing or incomplete: a user error."""


def check_run_dir(run_dir):
    if not os.path.isdir(run_dir):
        raise RunError(f"run directory not found: {run_dir}")
    return run_dir


def _read_json(path, what):
    if not os.path.isfile(path):
        raise RunError(f"{what} not found: {path}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_config(run_dir):
    """The run's config.json as a dict ({} when the run has none)."""
    path = os.path.join(check_run_dir(run_dir), "config.json")
    return _read_json(path, "run config") if os.path.isfile(path) else {}


def run_task(run_dir):
    """The task the run was trained for (config.json's `task`; runs older than it: classification)."""
    return run_config(run_dir).get("task") or "classification"


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)


def save_run_tokenizer(tokenizer, run_dir):
    """vocab.txt and tokenizer.json (the settings that rebuild `tokenizer` with the vocabulary)."""
    from tfdistil.text import save_vocabulary

    save_vocabulary(tokenizer.get_vocabulary(), os.path.join(run_dir, "vocab.txt"))
    config = tokenizer.get_config()
    write_json(os.path.join(run_dir, TOKENIZER_FILE), {k: config[k] for k in _TOKENIZER_SETTINGS})


def load_run_tokenizer(run_dir):
    """The run's WordPieceTokenizer (vocab.txt with tokenizer.json's settings)."""
    from tfdistil.text import WordPieceTokenizer

    check_run_dir(run_dir)
    vocab_path = os.path.join(run_dir, "vocab.txt")
    if not os.path.isfile(vocab_path):
        raise RunError(f"vocabulary not found: {vocab_path}")
    settings = _read_json(os.path.join(run_dir, TOKENIZER_FILE), "tokenizer settings")
    return WordPieceTokenizer(vocab_path, **settings)


def save_run_label_names(label_names, run_dir):
    """label_names.json: the label strings, or null for a model without classes (regression)."""
    write_json(os.path.join(run_dir, LABEL_NAMES_FILE), None if label_names is None else list(label_names))


def load_run_label_names(run_dir):
    """label_names.json: label strings in the model's output order (None: a regression run)."""
    check_run_dir(run_dir)
    return _read_json(os.path.join(run_dir, LABEL_NAMES_FILE), "label names")


def run_model_names(run_dir):
    models_dir = os.path.join(run_dir, "models")
    if not os.path.isdir(models_dir):
        return []
    return sorted(f[: -len(".keras")] for f in os.listdir(models_dir) if f.endswith(".keras"))


def resolve_model_name(run_dir, model=None):
    """`model` if the run has it, else the run's default model; RunError listing what it has."""
    check_run_dir(run_dir)
    available = run_model_names(run_dir)
    if model is None:
        for name in DEFAULT_MODELS:
            if name in available:
                return name
        if len(available) == 1:
            return available[0]
        raise RunError(f"{run_dir}: no model to choose by default; pass --model, one of {available}")
    if model not in available:
        raise RunError(f"model {model!r} not found in {os.path.join(run_dir, 'models')}; models: {available}")
    return model


def load_run_model(run_dir, model=None):
    """(model name, keras model) of a run."""
    import keras

    import tfdistil.models, tfdistil.training  # noqa: F401, E401 - register the classes a saved model names

    name = resolve_model_name(run_dir, model)
    path = os.path.join(run_dir, "models", f"{name}.keras")
    try:
        return name, keras.models.load_model(path)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError) as error:
        # A .keras file is a zip archive: a truncated one fails deep inside Keras with messages
        # such as "File not found" that do not name the file.
        reason = " ".join(str(error).split())[:200]
        raise RunError(f"{path} is damaged (truncated or not a Keras model file): {reason}") from None
