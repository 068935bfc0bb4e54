"""`tfdistil` on the command line. Thin: parses arguments into a `RunConfig`, then calls a job.

    tfdistil finetune --train FILE --dev FILE (--hf PATH | --preset NAME [--vocabulary vocab.txt]) [--task ner|regression]
    tfdistil distill  [--teacher RUN_DIR --train FILE --dev FILE [--student-layers N ...]]
    tfdistil evaluate --run RUN_DIR [--model NAME] --data FILE   (an embedder run: zero-shot STS-B)
    tfdistil predict  --run RUN_DIR [--model NAME] [TEXT ...]
    tfdistil export   --run RUN_DIR [--model NAME] [--format saved_model|tflite|hf] [--out DIR] ...
    tfdistil benchmark --run RUN_DIR [--batch-sizes 1,32]

Settings have one name each (`tfdistil.jobs.config`): `--batch-size` on the command line is
`batch_size` in a `--config` YAML/JSON file and in the run's config.json. TensorFlow is imported
only by the command that runs, with its C++ logging silenced first. User errors (a missing file or
run folder, a bad data file, a bad --config) print one line on stderr and give exit code 2.
"""
import argparse
import dataclasses
import json
import math
import os
import sys
import typing

from tfdistil.jobs.config import DISTILL_DEFAULTS, EMBEDDED_DEFAULTS, FIELDS, FINETUNE_DEFAULTS, PARTS, RunConfig

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")  # tfdistil.training.precision.POLICIES + auto
TASK_NAMES = ("classification", "ner", "regression", "embedding", "qa")  # tfdistil.tasks.TASKS

FLAG_HELP = {
    "task": "classification: a label a text (.csv/.tsv/.jsonl, sentence pairs with --text-pair-column; GLUE MRPC, "
    "RTE and CoLA TSVs as they are); regression: a float score a text (GLUE STS-B, or a file whose label column "
    "holds numbers); ner: a tag a word (CoNLL: 'TOKEN TAG' a line, blank line between sentences). Default: "
    "regression for a GLUE STS-B file, else classification; distill: the teacher's",
    "train": "labelled training file",
    "dev": "labelled dev file: early stopping and the report",
    "text_column": "column (JSON key) of the text; default: the first of sentence, content, text",
    "text_pair_column": "column of the second text (sentence pairs)",
    "label_column": "column of the label",
    "tag_column": "--task ner: 0-based column of the tag (-1: last, as in 4-column CoNLL-2003)",
    "doc_stride": "--task qa: context word pieces between the starts of two windows of a long context",
    "max_question_length": "--task qa: word pieces of the question kept",
    "sequence_length": "tokens per example, [CLS] and [SEP] included",
    "batch_size": "examples per batch",
    "augment_copies": "also distil on N perturbed copies of each training sentence or pair (words masked or "
    "swapped, n-grams kept; Tang et al. 2019) that only the teacher labels; 0: off",
    "teacher": "run folder of a `tfdistil finetune` teacher",
    "hf": "local Hugging Face BERT/DistilBERT folder to fine-tune (gets a new task head)",
    "preset": "size preset of a teacher trained from scratch",
    "vocabulary": "vocab.txt for --preset; default: learn one from the training text",
    "vocabulary_size": "size of the WordPiece vocabulary learned from the training text",
    "teacher_num_layers": "teacher depth (overrides the preset's)",
    "teacher_epochs": "maximum teacher training epochs",
    "teacher_learning_rate": "peak AdamW learning rate of the teacher (default: 5e-5 with --hf, 5e-4 from scratch)",
    "student_layers": "layers of the DistilBERT student (default: half the teacher's)",
    "student_hidden_dim": "student width (default: the teacher's; narrower students start from random weights)",
    "student_num_heads": "student attention heads (default: the teacher's)",
    "student_intermediate_dim": "student feed-forward width (default: the teacher's)",
    "layer_map": "teacher layer of each student layer, comma-separated (e.g. 0,2; default: one in every k)",
    "student_epochs": "maximum epochs of each student",
    "student_learning_rate": "peak AdamW learning rate of the students",
    "alpha": "weight of the hard-label loss; the soft loss gets 1 - alpha",
    "temperature": "softmax temperature of the soft targets",
    "hidden_cosine_weight": "weight of DistilBERT's hidden-state cosine loss (same width only)",
    "hidden_mse_weight": "weight of TinyBERT's hidden-state MSE loss (a learned projection for narrower students)",
    "attention_weight": "weight of the attention-distribution KL loss",
    "hard_labels_baseline": "also train the same student on hard labels alone, for comparison; "
    "--no-hard-labels-baseline trains the distilled student only (about half the time)",
    "cache_teacher_logits": "compute the teacher's logits on the distillation data once and reuse them every "
    "epoch (batches fixed after the first epoch, their order reshuffled); needs the hidden-state and attention "
    "weights at 0",
    "name": "run name: outputs go to RUNS_DIR/NAME",
    "runs_dir": "folder of all runs",
    "precision": "dtype policy; auto picks the fast, safe one for the device",
    "seed": "random seed (data order, initialisation)",
    "patience": "early-stopping patience in epochs (best weights restored)",
    "verbose": "auto (a progress bar on a terminal, one line an epoch otherwise), 0 silent, 1 bar, 2 epoch lines",
}
# Which settings each training command takes, and the other spellings it accepts for them (on the
# command line and as config-file keys).
FINETUNE_FIELDS = [f for f in FIELDS if FIELDS[f] in ("data", "training") and f != "augment_copies"] + [
    "hf", "preset", "vocabulary", "vocabulary_size", "teacher_num_layers", "teacher_epochs", "teacher_learning_rate"]
DISTILL_FIELDS = [f for f in FIELDS if f not in ("hf", "vocabulary")]
ALIASES = {
    "finetune": {"teacher_epochs": "epochs", "teacher_num_layers": "num_layers", "teacher_learning_rate": "learning_rate"},
    "distill": {"student_epochs": "epochs", "preset": "teacher_preset"},
}
# Settings of the embedded default run (a teacher trained in the run) that a distillation from a
# finished teacher does not use.
EMBEDDED_ONLY = ("vocabulary_size", "sequence_length", "preset", "teacher_num_layers", "teacher_epochs",
                 "teacher_learning_rate")
DISTILL_DATA_ARGS = ("teacher", "train", "dev")
# Allowed values of the numeric settings, (lowest, highest), both included (None: no bound): a value
# outside is a usage error when parsing, before any file is read or TensorFlow imported. A float is
# also refused when it is not finite; `temperature` must be above 0. (`augment_copies` >= 0 is
# checked by `distill`, with the error that names it.)
RANGES = {
    "batch_size": (1, None), "sequence_length": (3, None), "vocabulary_size": (6, None),  # 5 reserved tokens
    "teacher_num_layers": (1, None), "teacher_epochs": (1, None), "student_layers": (1, None),
    "student_epochs": (1, None), "student_hidden_dim": (1, None), "student_num_heads": (1, None),
    "student_intermediate_dim": (1, None), "patience": (0, None),
    "seed": (0, 2**32 - 1), "teacher_learning_rate": (0, None), "student_learning_rate": (0, None),
    "alpha": (0, 1), "temperature": (0, None), "hidden_cosine_weight": (0, None),
    "hidden_mse_weight": (0, None), "attention_weight": (0, None),
}


class UsageError(ValueError):
    """A user error found after parsing (a bad --config, a missing required option)."""


class _Unset:
    """Marks an option the command line did not give (so --config can fill it)."""

    def __repr__(self):
        return "<unset>"


_UNSET = _Unset()


def _int_list(text):
    try:
        return [int(x) for x in str(text).replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _number(kind, name):
    """argparse type: an int or a finite float within RANGES[name] (argparse itself words the
    error for text that is not a number: "invalid int value: 'x'")."""
    low, high = RANGES.get(name, (None, None))

    def parse(text):
        value = kind(text)
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if name == "temperature" and value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit code 2), like the other user
    errors, instead of the usage text followed by the error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (for usage: {self.prog} --help)\n")


def _verbosity(text):
    text = str(text)
    if text not in ("auto", "0", "1", "2"):
        raise argparse.ArgumentTypeError(f"expected auto, 0, 1 or 2, got {text!r}")
    return text if text == "auto" else int(text)


def _field_types():
    """{field: bool, int, float, str or list}: a field's type without its `| None`."""
    types = {}
    for cls in PARTS.values():
        for field in dataclasses.fields(cls):
            kinds = [t for t in typing.get_args(field.type) if t is not type(None)] or [field.type]
            types[field.name] = typing.get_origin(kinds[0]) or kinds[0]
    return types


def _preset_names():
    """The model size presets. models/presets.py is plain data, loaded here by its path: importing
    `tfdistil.models` would import TensorFlow just to print the help."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "tfdistil._presets_for_cli", os.path.join(os.path.dirname(__file__), "models", "presets.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return sorted(module.PRESETS)


def _add_setting(parser, name, default, command):
    """One RunConfig field as a flag (`--batch-size`, plus the command's alias)."""
    flags = ["--" + name.replace("_", "-")]
    alias = ALIASES.get(command, {}).get(name)
    if alias:
        flags.append("--" + alias.replace("_", "-"))
    help_text = FLAG_HELP.get(name, "")
    if command == "distill" and name in EMBEDDED_ONLY:
        help_text += "; embedded default run only"
    shown = f" (default: {default})" if default is not None else ""
    kind = _field_types()[name]
    kwargs = dict(dest=name, default=default, help=f"{help_text}{shown}")
    if name == "layer_map":
        kwargs.update(type=_int_list, metavar="I,J,...")
    elif name == "verbose":
        kwargs.update(type=_verbosity)
    elif name == "precision":
        kwargs.update(choices=PRECISIONS)
    elif name == "task":
        kwargs.update(choices=TASK_NAMES)
    elif name == "preset":
        kwargs.update(choices=_preset_names())
    elif kind is bool:
        kwargs.update(action=argparse.BooleanOptionalAction)
    elif kind in (int, float):
        kwargs.update(type=_number(kind, name))
    if name in ("train", "dev", "vocabulary"):
        kwargs["metavar"] = "FILE"
    elif name in ("teacher", "hf"):
        kwargs["metavar"] = "RUN_DIR" if name == "teacher" else "PATH"
    parser.add_argument(*flags, **kwargs)


def _defaults(command):
    defaults = RunConfig().flat()
    if command == "finetune":
        defaults.update(FINETUNE_DEFAULTS)
    else:
        # The embedded run's own recipe (its student, ...) is `embedded_config`'s; the flags show
        # only the settings that run alone uses.
        defaults.update(DISTILL_DEFAULTS, **{k: EMBEDDED_DEFAULTS[k] for k in EMBEDDED_ONLY if k in EMBEDDED_DEFAULTS})
    return defaults


def _add_run_settings(parser, command):
    defaults = _defaults(command)
    for name in FINETUNE_FIELDS if command == "finetune" else DISTILL_FIELDS:
        _add_setting(parser, name, defaults[name], command)
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="YAML or JSON file whose keys are the long option names with underscores "
                        "(e.g. batch_size: 16); flags given on the command line override it")


def _add_finetune_args(p):
    _add_run_settings(p, "finetune")


def _add_distill_args(p):
    _add_run_settings(p, "distill")


def _add_model_args(p):
    p.add_argument("--run", default=None, metavar="RUN_DIR", help="run folder (runs/<name>)")
    p.add_argument("--model", default=None,
                   help="model of the run (models/<model>.keras); default: model, else student_distilled")
    p.add_argument("--batch-size", type=_number(int, "batch_size"), default=32,
                   help="examples per batch (default: 32)")


def _add_evaluate_args(p):
    _add_model_args(p)
    p.add_argument("--data", default=None, metavar="FILE", help="labelled file to evaluate on")
    p.add_argument("--text-column", default=None, help="column of the text (default: the run's)")
    p.add_argument("--text-pair-column", default=None, help="column of the second text (default: the run's)")
    p.add_argument("--label-column", default=None, help="column of the label (default: the run's)")
    p.add_argument("--tag-column", type=int, default=None,
                   help="tagger runs: 0-based column of the tag in the CoNLL file (default: the run's)")
    p.add_argument("--output", default=None, metavar="JSON",
                   help="where to write the result (default: RUN_DIR/evaluation_<model>_<file>.json)")


def _add_predict_args(p):
    _add_model_args(p)
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="texts to label; none: one text a line from stdin. A run trained on sentence pairs "
                   "takes each pair as 'first<TAB>second'; a tagger run tags each whitespace-separated word; a qa run "
                   "takes 'question<TAB>context' and prints answer<TAB>score<TAB>question")


def _add_benchmark_args(p):
    p.add_argument("--run", default=None, metavar="RUN_DIR", help="run folder (runs/<name>): every models/*.keras")
    p.add_argument("--batch-sizes", default="1,32", help="comma-separated batch sizes (default: 1,32)")
    p.add_argument("--sequence-length", type=int, default=128, help="tokens per example (default: 128)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per measurement; the median is kept")
    p.add_argument("--output", default=None, metavar="JSON", help="default: RUN_DIR/benchmark.json")


def _add_export_args(p):
    p.add_argument("--run", default=None, metavar="RUN_DIR", help="run folder (runs/<name>)")
    p.add_argument("--model", default=None,
                   help="model of the run (models/<model>.keras); default: model, else student_distilled")
    p.add_argument("--format", default="saved_model", choices=("saved_model", "tflite", "hf"),
                   help="saved_model: TF Serving layout, raw text in (OUT/NAME/<version>); tflite: OUT/NAME.tflite, "
                   "token ids in, builtin ops only; hf: a Hugging Face folder at OUT for transformers "
                   "(default: saved_model)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: saved_models for saved_model; exports for tflite; "
                   "exports/NAME_hf for hf)")
    p.add_argument("--name", default=None, help="model name in OUT (default: the run folder's name)")
    p.add_argument("--version", type=int, default=None,
                   help="saved_model version to write (default: the next one); never overwritten")
    p.add_argument("--quantize", default="float32", choices=("float32", "float16", "int8"),
                   help="tflite weights: float32, float16, or int8 dynamic range (default: float32)")
    p.add_argument("--sequence-length", type=int, default=None,
                   help="tflite: fixed tokens per input (default: the run tokenizer's sequence_length)")


COMMANDS = {
    "finetune": (
        "Fine-tune a teacher (a local Hugging Face checkpoint, or a preset from scratch) on your labelled files.",
        _add_finetune_args,
    ),
    "distill": (
        "Distil a student from a teacher. With no data arguments: the embedded default run "
        "(teacher from scratch on the built-in sentiment data, student with half its layers and a "
        "quarter of its width). "
        "With --teacher RUN_DIR --train FILE --dev FILE: a DistilBERT student of a fine-tuned teacher.",
        _add_distill_args,
    ),
    "evaluate": ("The task's scores of a saved model on a labelled file (accuracy, F1 and MCC, and the confusion "
                 "matrix; a regression run: Pearson, Spearman and MSE; a tagger run: entity-level precision, "
                 "recall and F1 per type on a CoNLL file).", _add_evaluate_args),
    "predict": ("Labels and probabilities of texts (arguments, or stdin one a line): label<TAB>probability<TAB>text; "
                "a regression run prints score<TAB>text; a tagger run prints word/TAG for each word.",
                _add_predict_args),
    "export": ("Export a run's model: a TF Serving SavedModel, a TFLite file, or a Hugging Face folder.",
               _add_export_args),
    "benchmark": ("Inference latency and throughput of every model of a run (median of repeated calls), "
                  "with the speed-up over the first (the teacher).", _add_benchmark_args),
}
REQUIRED = {"finetune": ("train", "dev"), "evaluate": ("run", "data"), "predict": ("run",), "export": ("run",),
            "benchmark": ("run",)}


def _build():
    parser = _Parser(
        prog="tfdistil", description="Distil BERT into smaller, faster students (Keras 3 / TensorFlow)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name, (help_text, add_args) in COMMANDS.items():
        commands[name] = sub.add_parser(name, help=help_text, description=help_text)
        add_args(commands[name])
    return parser, commands


def build_parser():
    return _build()[0]


# ----------------------------------------------------------------------------- --config


def _options(parser):
    # argparse has no public list of a parser's options (`_actions`).
    return {a.dest: a for a in parser._actions if a.dest not in (argparse.SUPPRESS, "help") and a.option_strings}


def _config_key(key, command):
    key = str(key).replace("-", "_")
    for name, alias in ALIASES.get(command, {}).items():
        if key == alias:
            return name
    return key


def load_config_file(path, parser, command=None):
    """{dest: value} of a YAML/JSON --config file, checked against `parser`'s options."""
    if not os.path.isfile(path):
        raise UsageError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        if path.lower().endswith(".json"):
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as error:  # noqa: BLE001 - any parse error is the file's fault
        message = " ".join(str(error).split())
        raise UsageError(f"config file {path}: cannot parse it: {message}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise UsageError(f"config file {path}: expected a mapping of option names to values, "
                         f"got {type(values).__name__}")
    options = {k: a for k, a in _options(parser).items() if k != "config"}
    named = {}
    for key, value in values.items():
        named[_config_key(key, command)] = (key, value)
    unknown = sorted(str(key) for dest, (key, _) in named.items() if dest not in options)
    if unknown:
        known = sorted(set(options) | set(ALIASES.get(command, {}).values()))
        raise UsageError(f"config file {path}: unknown keys {unknown}; known keys: {known}")
    checked = {}
    for dest, (key, value) in named.items():
        action = options[dest]
        if isinstance(action, argparse.BooleanOptionalAction):
            if not isinstance(value, bool):
                raise UsageError(f"config file {path}: {key}: expected true or false, got {value!r}")
        elif dest == "layer_map" and isinstance(value, list):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                raise UsageError(f"config file {path}: {key}: expected a list of integers, got {value!r}")
        elif value is not None and action.type is not None:
            if isinstance(value, (dict, list, bool)):
                raise UsageError(f"config file {path}: {key}: expected one value, got {value!r}")
            try:
                value = action.type(str(value))
            except argparse.ArgumentTypeError as error:
                raise UsageError(f"config file {path}: {key}: {error}") from None
            except (TypeError, ValueError):
                name = getattr(action.type, "__name__", "").lstrip("_")
                raise UsageError(f"config file {path}: {key}: invalid {name} value {value!r}") from None
        elif value is not None and not isinstance(value, str):
            raise UsageError(f"config file {path}: {key}: expected a string, got {value!r}")
        if action.choices is not None and value not in action.choices:
            raise UsageError(f"config file {path}: {key}: {value!r} is not one of {list(action.choices)}")
        checked[dest] = value
    return checked


def _parse(parser, argv, command=None):
    """(values, given): every option's value (defaults < --config file < command line), and the
    names the command line or the config file set."""
    actions = [a for a in parser._actions if a.dest not in (argparse.SUPPRESS, "help")]  # no public list
    # argparse fills in a default only for names the namespace lacks: pre-filled with _UNSET,
    # what is still _UNSET afterwards was not on the command line.
    namespace = argparse.Namespace(**{a.dest: _UNSET for a in actions})
    parser.parse_args(argv, namespace=namespace)
    explicit = {k: v for k, v in vars(namespace).items() if v is not _UNSET}
    from_file = load_config_file(explicit["config"], parser, command) if explicit.get("config") else {}
    values = {a.dest: a.default for a in actions}
    values.update(from_file)
    values.update(explicit)
    return values, set(from_file) | set(explicit)


def _require(values, names):
    missing = ["--" + n.replace("_", "-") for n in names if values.get(n) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")


def _run_config(values, given, task):
    """The RunConfig of a training command, after refusing data settings that `task` does not read."""
    from tfdistil.tasks import TASKS, get_task

    spec = get_task(task)
    others = {k for t in TASKS.values() for k in t.data_settings} - set(spec.data_settings)
    wrong = [f"--{k.replace('_', '-')}" for k in sorted(others) if k in given]
    if wrong:
        raise UsageError(f"{', '.join(wrong)} do not apply to --task {spec.name} (its settings: "
                         f"{', '.join('--' + k.replace('_', '-') for k in spec.data_settings)})")
    values = dict(values, **{k: v for k, v in spec.setting_defaults.items() if k not in given})
    return RunConfig.from_flat({k: v for k, v in values.items() if k in FIELDS})


def _task_of_files(values):
    """--task, or "qa" for a SQuAD training file (the other detections happen in the job)."""
    from tfdistil.data.squad import is_squad_file

    if values["task"]:
        return values["task"]
    return "qa" if values.get("train") and is_squad_file(values["train"]) else "classification"


# ----------------------------------------------------------------------------- commands


def _finetune(values, given):
    from tfdistil.jobs import finetune

    _require(values, REQUIRED["finetune"])
    finetune(_run_config(values, given, _task_of_files(values)))


def _distill(values, given):
    from tfdistil.jobs import distill

    if values.get("augment_copies", 0) < 0:
        raise UsageError(f"--augment-copies must be >= 0, got {values['augment_copies']}")
    if not any(values.get(k) is not None for k in DISTILL_DATA_ARGS):
        from tfdistil.jobs import embedded_config

        # The embedded default run: the shipped sentiment files, a teacher trained in the run.
        settings = {k: v for k, v in values.items()
                    if k in FIELDS and k not in DISTILL_DATA_ARGS and (k in given or k in EMBEDDED_ONLY)}
        settings["task"] = settings.get("task") or "classification"
        _run_config(values, given, settings["task"])
        distill(embedded_config(**settings))
        return
    _require(values, DISTILL_DATA_ARGS)
    if "name" not in given:
        values["name"] = os.path.basename(os.path.normpath(values["teacher"])) + "_distilled"
    from tfdistil.jobs.runs import run_config, run_task
    from tfdistil.tasks import get_task

    task = values["task"] or run_task(values["teacher"])
    recorded = run_config(values["teacher"])
    values.update({k: recorded[k] for k in get_task(task).teacher_settings if k not in given and k in recorded})
    distill(_run_config(values, given, task))


def _evaluate(values, given):
    from tfdistil.jobs import evaluate

    _require(values, REQUIRED["evaluate"])
    result = evaluate(values["run"], values["data"], model=values["model"], batch_size=values["batch_size"],
                      output=values["output"], text_column=values["text_column"],
                      text_pair_column=values["text_pair_column"], label_column=values["label_column"],
                      tag_column=values["tag_column"])
    print(json.dumps(result, indent=2))


def _predict(values, given):
    from tfdistil.jobs import predict

    _require(values, REQUIRED["predict"])
    texts = list(values["texts"] or []) or _stdin_lines()
    if not texts:
        raise UsageError("no texts to label: give them as arguments or one a line on stdin")
    from tfdistil.tasks import InputError

    try:
        lines = predict(values["run"], texts, model=values["model"], batch_size=values["batch_size"])
    except InputError as error:
        raise UsageError(str(error)) from None
    for line in lines:
        print(line)


def _stdin_lines():
    """Standard input's lines, one text each (a blank line too: one output line per input line);
    UsageError naming the first line that is not UTF-8."""
    stream = getattr(sys.stdin, "buffer", None)
    raw = stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last line
    texts = []
    for number, line in enumerate(lines, 1):
        line = line.removesuffix(b"\r")
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise UsageError(f"stdin line {number} is not valid UTF-8 (byte {error.start + 1} is "
                             f"{line[error.start:error.start + 1]!r}); give text in UTF-8") from None
    return texts


def _export(values, given):
    from tfdistil.jobs.export import export_run

    _require(values, REQUIRED["export"])
    path = export_run(
        values["run"], format=values["format"], model=values["model"], out=values["out"], name=values["name"],
        version=values["version"], quantize=values["quantize"], sequence_length=values["sequence_length"],
    )
    print(f"[tfdistil] exported {values['format']}: {path}")


def _benchmark(values, given):
    from tfdistil.jobs.benchmark import benchmark_run

    try:
        batch_sizes = [int(b) for b in values["batch_sizes"].split(",")]
    except ValueError:
        raise UsageError(f"--batch-sizes must be comma-separated integers, got {values['batch_sizes']!r}") from None
    _require(values, REQUIRED["benchmark"])
    result = benchmark_run(values["run"], batch_sizes, values["sequence_length"], values["repeats"],
                           output=values["output"])
    print(result["table"])


HANDLERS = {"benchmark": _benchmark, "finetune": _finetune, "distill": _distill, "evaluate": _evaluate,
            "predict": _predict, "export": _export}


def main(argv=None):
    from tfdistil._env import quiet_tensorflow

    quiet_tensorflow()  # before anything imports TensorFlow; cheap, and a no-op once it is imported
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, commands = _build()
    if not argv or argv[0] not in commands:
        parser.parse_args(argv)  # top-level --help, or an error naming the valid commands
        return 2
    command = argv[0]
    try:
        values, given = _parse(commands[command], argv[1:], command)
    except UsageError as error:
        return _user_error(command, error)
    from tfdistil.data import DataError
    from tfdistil.jobs import RunError

    try:
        HANDLERS[command](values, given)
    except (UsageError, RunError, DataError) as error:
        return _user_error(command, error)
    return 0


def _user_error(command, error):
    message = " ".join(str(error).split())  # one line
    print(f"tfdistil {command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
