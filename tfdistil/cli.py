"""`tfdistil` on the command line. Thin: parses arguments, then calls the library.

    tfdistil finetune --train FILE --dev FILE (--hf PATH | --preset NAME [--vocabulary vocab.txt])
    tfdistil distill  [--teacher RUN_DIR --train FILE --dev FILE [--student-layers N]]
    tfdistil evaluate --run RUN_DIR [--model NAME] --data FILE
    tfdistil predict  --run RUN_DIR [--model NAME] [TEXT ...]
    tfdistil export   --run RUN_DIR [--model NAME] [--format saved_model|tflite|hf] [--out DIR] [--name NAME]
                      [--version N] [--quantize float32|float16|int8] [--sequence-length N]

User errors (a missing file or run folder, a bad data file, a bad --config) print one line
on stderr and give exit code 2.
"""
import argparse
import dataclasses
import json
import os
import sys


FLAG_HELP = {
    "name": "run name: outputs go to RUNS_DIR/NAME",
    "runs_dir": "folder of all runs",
    "precision": "dtype policy; auto picks the fast, safe one for the device",
    "seed": "random seed (data order, initialisation)",
    "vocabulary_size": "size of the WordPiece vocabulary learned from the training text",
    "sequence_length": "tokens per example, [CLS] and [SEP] included",
    "teacher_preset": "size preset of the BERT teacher",
    "teacher_num_layers": "teacher depth (overrides the preset); the student gets half",
    "teacher_epochs": "teacher training epochs",
    "student_epochs": "epochs of each student",
    "batch_size": "examples per batch",
    "teacher_learning_rate": "peak AdamW learning rate of the teacher",
    "student_learning_rate": "peak AdamW learning rate of the students",
    "alpha": "weight of the hard-label loss; the soft loss gets 1 - alpha",
    "temperature": "softmax temperature of the soft targets",
    "hidden_cosine_weight": "weight of DistilBERT's hidden-state cosine loss",
    "hard_labels_baseline": "also train the same student on hard labels alone, for comparison; "
    "--no-hard-labels-baseline trains the distilled student only (about half the time)",
    "augment_copies": "also distil on N perturbed copies of each training sentence (words masked or swapped, "
    "n-grams kept; Tang et al. 2019) that only the teacher labels; 0: off",
    "patience": "early-stopping patience in epochs (best weights restored)",
    "verbose": "Keras fit verbosity (0 silent, 1 progress bar, 2 one line per epoch)",
}
# Flags of the embedded default run that a run on the user's data (--teacher ...) does not use.
DEFAULT_RUN_ONLY = ("vocabulary_size", "sequence_length", "teacher_preset", "teacher_num_layers", "teacher_epochs",
                    "teacher_learning_rate")
# Extra spellings of a flag.
ALIASES = {"student_epochs": ["--epochs"]}
DISTILL_DATA_ARGS = ("teacher", "train", "dev", "student_layers")


class UsageError(ValueError):
    """A user error found after parsing (a bad --config, a missing required option)."""


class _Unset:
    """Marks an option the command line did not give (so --config can fill it)."""

    def __repr__(self):
        return "<unset>"


_UNSET = _Unset()


def _precision_choices():
    from tfdistil.training.precision import POLICIES

    return POLICIES + ("auto",)


def _add_default_run_args(parser):
    from tfdistil.recipes import DefaultRunConfig

    defaults = DefaultRunConfig()
    choices = {"precision": _precision_choices()}
    for field in dataclasses.fields(DefaultRunConfig):
        flags = ["--" + field.name.replace("_", "-"), *ALIASES.get(field.name, [])]
        default = getattr(defaults, field.name)
        help_text = FLAG_HELP.get(field.name, "")
        if field.name in DEFAULT_RUN_ONLY:
            help_text += "; default run only"
        if isinstance(default, bool):
            parser.add_argument(*flags, dest=field.name, action=argparse.BooleanOptionalAction, default=default,
                                help=f"{help_text} (default: {default})")
            continue
        parser.add_argument(*flags, dest=field.name, type=type(default), default=default,
                            choices=choices.get(field.name), help=f"{help_text} (default: {default})".strip())


def _add_column_args(parser):
    parser.add_argument("--text-column", default=None,
                        help="column (JSON key) of the text; default: the first of sentence, content, text "
                        "(GLUE SST-2 TSV is detected)")
    parser.add_argument("--text-pair-column", default=None, help="column of the second text (sentence pairs)")
    parser.add_argument("--label-column", default="label", help="column of the label (default: label)")


def _add_config_arg(parser):
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="YAML or JSON file whose keys are long option names with underscores "
                        "(e.g. batch_size: 16); flags given on the command line override it")


def _add_task_args(p):
    p.add_argument("--task", default="classification", choices=("classification", "ner"),
                   help="classification: a label a text (.csv/.tsv/.jsonl); ner: a tag a word (CoNLL: "
                   "'TOKEN TAG' a line, blank line between sentences) (default: classification)")
    p.add_argument("--tag-column", type=int, default=1,
                   help="--task ner: 0-based column of the tag (-1: last, as in 4-column CoNLL-2003; default: 1)")


def _add_finetune_args(p):
    from tfdistil.jobs import FinetuneConfig
    from tfdistil.models import PRESETS

    d = FinetuneConfig(train="", dev="")
    p.add_argument("--train", default=None, metavar="FILE", help="labelled training file (.csv, .tsv, .jsonl)")
    p.add_argument("--dev", default=None, metavar="FILE", help="labelled dev file: early stopping and report")
    _add_column_args(p)
    p.add_argument("--hf", default=None, metavar="PATH",
                   help="local Hugging Face BERT/DistilBERT folder to fine-tune (gets a new classification head)")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="train this size from scratch instead of --hf")
    p.add_argument("--vocabulary", default=None, metavar="VOCAB_TXT",
                   help="vocab.txt for --preset; default: learn one from the training text")
    p.add_argument("--vocabulary-size", type=int, default=d.vocabulary_size,
                   help=f"size of the learned vocabulary (--preset without --vocabulary; default: {d.vocabulary_size})")
    p.add_argument("--num-layers", type=int, default=None, help="depth of the --preset model (default: the preset's)")
    p.add_argument("--name", default=d.name, help=f"{FLAG_HELP['name']} (default: {d.name})")
    p.add_argument("--runs-dir", default=d.runs_dir, help=f"{FLAG_HELP['runs_dir']} (default: {d.runs_dir})")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"maximum training epochs (default: {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"examples per batch (default: {d.batch_size})")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak AdamW learning rate (default: 5e-5 with --hf, 5e-4 with --preset)")
    p.add_argument("--sequence-length", type=int, default=d.sequence_length,
                   help=f"{FLAG_HELP['sequence_length']} (default: {d.sequence_length})")
    p.add_argument("--precision", default=d.precision, choices=_precision_choices(),
                   help=f"{FLAG_HELP['precision']} (default: {d.precision})")
    p.add_argument("--patience", type=int, default=d.patience,
                   help=f"early stopping on dev accuracy, best weights restored (default: {d.patience})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"{FLAG_HELP['seed']} (default: {d.seed})")
    p.add_argument("--verbose", type=int, default=d.verbose, help=f"{FLAG_HELP['verbose']} (default: {d.verbose})")
    _add_task_args(p)
    _add_config_arg(p)


def _add_distill_args(p):
    p.add_argument("--teacher", default=None, metavar="RUN_DIR", help="run folder of a `tfdistil finetune` teacher")
    p.add_argument("--train", default=None, metavar="FILE", help="labelled training file (with --teacher)")
    p.add_argument("--dev", default=None, metavar="FILE", help="labelled dev file (with --teacher)")
    p.add_argument("--student-layers", type=int, default=None,
                   help="layers of the DistilBERT student (with --teacher; default: half the teacher's)")
    _add_column_args(p)
    _add_default_run_args(p)
    _add_task_args(p)
    _add_config_arg(p)


def _add_model_args(p):
    p.add_argument("--run", default=None, metavar="RUN_DIR", help="run folder (runs/<name>)")
    p.add_argument("--model", default=None,
                   help="model of the run (models/<model>.keras); default: model, else student_distilled")
    p.add_argument("--batch-size", type=int, default=32, help="examples per batch (default: 32)")


def _add_evaluate_args(p):
    _add_model_args(p)
    p.add_argument("--data", default=None, metavar="FILE", help="labelled file to evaluate on")
    _add_column_args(p)
    p.add_argument("--tag-column", type=int, default=None,
                   help="tagger runs: 0-based column of the tag in the CoNLL file (default: the run's)")
    p.add_argument("--output", default=None, metavar="JSON",
                   help="where to write the result (default: RUN_DIR/evaluation_<model>_<file>.json)")


def _add_predict_args(p):
    _add_model_args(p)
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help="texts to label; none: one text a line from stdin. A run trained on sentence pairs "
                   "takes each pair as 'first<TAB>second'; a tagger run tags each whitespace-separated word")


def _add_benchmark_args(p):
    p.add_argument("--run", default=None, metavar="RUN_DIR", help="run folder (runs/<name>): every models/*.keras")
    p.add_argument("--batch-sizes", default="1,32", help="comma-separated batch sizes (default: 1,32)")
    p.add_argument("--sequence-length", type=int, default=128, help="tokens per example (default: 128)")
    p.add_argument("--repeats", type=int, default=20, help="timed calls per measurement; the median is kept")
    p.add_argument("--output", default=None, metavar="JSON",
                   help="default: RUN_DIR/benchmark.json (--peers: benchmarks/results/peers.json, and a .md beside it)")
    p.add_argument("--peers", action="store_true",
                   help="instead of a run: tfdistil against KerasHub and Hugging Face PyTorch at bert_base, "
                   "distilbert_base and bert_mini sizes (needs the bench extra; benchmarks/bench_peers.py has "
                   "every option); --batch-sizes, --sequence-length and --repeats narrow it when given")
    p.add_argument("--quick", action="store_true", help="with --peers: a smoke run of a minute or two")


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
        "Fine-tune a text classifier teacher (a local Hugging Face checkpoint, or a preset from scratch) "
        "on your labelled files.",
        _add_finetune_args,
    ),
    "distill": (
        "Distil a student from a teacher. With no data arguments: the embedded default run "
        "(teacher from scratch on the built-in sentiment data, student with half its layers). "
        "With --teacher RUN_DIR --train FILE --dev FILE: a DistilBERT student of a fine-tuned teacher.",
        _add_distill_args,
    ),
    "evaluate": ("Accuracy and confusion matrix of a saved model on a labelled file (a tagger run: entity-level "
                 "precision, recall and F1 per type on a CoNLL file).", _add_evaluate_args),
    "predict": ("Labels and probabilities of texts (arguments, or stdin one a line): label<TAB>probability<TAB>text; "
                "a tagger run prints word/TAG for each word.", _add_predict_args),
    "export": ("Export a run's model: a TF Serving SavedModel, a TFLite file, or a Hugging Face folder.",
               _add_export_args),
    "benchmark": ("Inference latency and throughput of every model of a run (median of repeated calls), "
                  "with the speed-up over the first (the teacher); --peers: against KerasHub and PyTorch.",
                  _add_benchmark_args),
}
REQUIRED = {"finetune": ("train", "dev"), "evaluate": ("run", "data"), "predict": ("run",), "export": ("run",),
            "benchmark": ("run",)}


def _build():
    parser = argparse.ArgumentParser(
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
    return {a.dest: a for a in parser._actions if a.dest not in (argparse.SUPPRESS, "help") and a.option_strings}


def load_config_file(path, parser):
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
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(k for k in values if k not in options)
    if unknown:
        raise UsageError(f"config file {path}: unknown keys {unknown}; known keys: {sorted(options)}")
    checked = {}
    for key, value in values.items():
        action = options[key]
        if isinstance(action, argparse.BooleanOptionalAction):
            if not isinstance(value, bool):
                raise UsageError(f"config file {path}: {key}: expected true or false, got {value!r}")
        elif value is not None and action.type is not None:
            if isinstance(value, (dict, list, bool)):
                raise UsageError(f"config file {path}: {key}: expected one {action.type.__name__}, got {value!r}")
            try:
                value = action.type(str(value))
            except (TypeError, ValueError):
                raise UsageError(f"config file {path}: {key}: invalid {action.type.__name__} value {value!r}") from None
        elif value is not None and not isinstance(value, str):
            raise UsageError(f"config file {path}: {key}: expected a string, got {value!r}")
        if action.choices is not None and value not in action.choices:
            raise UsageError(f"config file {path}: {key}: {value!r} is not one of {list(action.choices)}")
        checked[key] = value
    return checked


def _parse(parser, argv):
    """(values, given): every option's value (defaults < --config file < command line), and the
    names the command line or the config file set."""
    actions = [a for a in parser._actions if a.dest not in (argparse.SUPPRESS, "help")]
    # argparse fills in a default only for names the namespace lacks: pre-filled with _UNSET,
    # what is still _UNSET afterwards was not on the command line.
    namespace = argparse.Namespace(**{a.dest: _UNSET for a in actions})
    parser.parse_args(argv, namespace=namespace)
    explicit = {k: v for k, v in vars(namespace).items() if v is not _UNSET}
    from_file = load_config_file(explicit["config"], parser) if explicit.get("config") else {}
    values = {a.dest: a.default for a in actions}
    values.update(from_file)
    values.update(explicit)
    return values, set(from_file) | set(explicit)


def _require(values, names):
    missing = ["--" + n.replace("_", "-") for n in names if values.get(n) is None]
    if missing:
        raise UsageError(f"the following arguments are required: {', '.join(missing)}")


def _fields(cls, values):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})


# ----------------------------------------------------------------------------- commands


COLUMN_ARGS = ("text_column", "text_pair_column", "label_column")


def _ner_only(values, given):
    """True for --task ner, after refusing the classification-only column options."""
    if values.get("task") != "ner":
        return False
    wrong = [f"--{k.replace('_', '-')}" for k in COLUMN_ARGS + ("augment_copies",) if k in given]
    if wrong:
        raise UsageError(f"{', '.join(wrong)} do not apply to --task ner (CoNLL files: use --tag-column; augmentation: classification only)")
    return True


def _finetune(values, given):
    from tfdistil.jobs import FinetuneConfig, finetune

    _require(values, REQUIRED["finetune"])
    if _ner_only(values, given):
        from tfdistil.jobs.ner import finetune_ner

        finetune_ner(
            values["train"], values["dev"], os.path.join(values["runs_dir"], values["name"]),
            hf=values["hf"], preset=values["preset"], vocabulary=values["vocabulary"],
            vocabulary_size=values["vocabulary_size"], num_layers=values["num_layers"],
            tag_column=values["tag_column"], epochs=values["epochs"], batch_size=values["batch_size"],
            learning_rate=values["learning_rate"], sequence_length=values["sequence_length"],
            precision=values["precision"], patience=values["patience"], seed=values["seed"],
            verbose=values["verbose"],
        )
        return
    finetune(_fields(FinetuneConfig, values))


def _distill(values, given):
    if values.get("augment_copies", 0) < 0:
        raise UsageError(f"--augment-copies must be >= 0, got {values['augment_copies']}")
    if not any(values.get(k) is not None for k in DISTILL_DATA_ARGS):
        from tfdistil.recipes import DefaultRunConfig, distill_default

        distill_default(_fields(DefaultRunConfig, values))
        return
    from tfdistil.jobs import DistillConfig, distill_from_run

    _require(values, ("teacher", "train", "dev"))
    if "name" not in given:
        values["name"] = os.path.basename(os.path.normpath(values["teacher"])) + "_distilled"
    if _ner_only(values, given):
        from tfdistil.jobs.ner import distill_ner

        distill_ner(
            values["teacher"], values["train"], values["dev"], os.path.join(values["runs_dir"], values["name"]),
            student_layers=values["student_layers"], tag_column=values["tag_column"],
            epochs=values["student_epochs"], batch_size=values["batch_size"],
            learning_rate=values["student_learning_rate"], alpha=values["alpha"],
            temperature=values["temperature"], hidden_cosine_weight=values["hidden_cosine_weight"],
            hard_labels_baseline=values["hard_labels_baseline"],
            precision=values["precision"], patience=values["patience"], seed=values["seed"],
            verbose=values["verbose"],
        )
        return
    distill_from_run(_fields(DistillConfig, values))


def _evaluate(values, given):
    from tfdistil.jobs import evaluate_run
    from tfdistil.jobs.ner import evaluate_ner_run
    from tfdistil.jobs.runs import run_task

    _require(values, REQUIRED["evaluate"])
    if run_task(values["run"]) == "ner":
        result = evaluate_ner_run(values["run"], values["data"], model=values["model"],
                                  tag_column=values["tag_column"], batch_size=values["batch_size"],
                                  output=values["output"])
        print(json.dumps(result, indent=2))
        return
    result = evaluate_run(
        values["run"], values["data"], model=values["model"], text_column=values["text_column"],
        text_pair_column=values["text_pair_column"], label_column=values["label_column"],
        batch_size=values["batch_size"], output=values["output"],
    )
    print(json.dumps(result, indent=2))


def _predict(values, given):
    from tfdistil.jobs import predict_run
    from tfdistil.jobs.ner import predict_ner_run
    from tfdistil.jobs.runs import run_config, run_task

    _require(values, REQUIRED["predict"])
    texts = list(values["texts"] or [])
    if not texts:
        texts = [line.rstrip("\r\n") for line in sys.stdin]
        texts = [t for t in texts if t.strip()]
    if not texts:
        raise UsageError("no texts to label: give them as arguments or one a line on stdin")
    run = values["run"]
    if run_task(run) == "ner":
        for tagged in predict_ner_run(run, texts, model=values["model"], batch_size=values["batch_size"]):
            print(" ".join(f"{word}/{tag}" for word, tag in tagged))
        return
    pairs = None
    if run_config(run).get("text_pair_column"):
        for number, text in enumerate(texts, 1):
            if "\t" not in text:
                raise UsageError(f"input {number} ({text[:60]!r}) has no TAB: this run was trained on sentence "
                                 "pairs; give each as 'first<TAB>second'")
        texts, pairs = zip(*(text.split("\t", 1) for text in texts))
        texts, pairs = list(texts), list(pairs)
    results = predict_run(run, texts, model=values["model"], batch_size=values["batch_size"], text_pairs=pairs)
    for i, (label, probability) in enumerate(results):
        shown = texts[i] if pairs is None else f"{texts[i]}\t{pairs[i]}"
        print(f"{label}\t{probability:.4f}\t{shown}")


def _export(values, given):
    from tfdistil.jobs.export import export_run

    _require(values, REQUIRED["export"])
    path = export_run(
        values["run"], format=values["format"], model=values["model"], out=values["out"], name=values["name"],
        version=values["version"], quantize=values["quantize"], sequence_length=values["sequence_length"],
    )
    print(f"[tfdistil] exported {values['format']}: {path}")


def _benchmark_peers(values, given, batch_sizes):
    from tfdistil.jobs import peers

    chosen = {}
    if "batch_sizes" in given:
        chosen["batch_sizes"] = tuple(batch_sizes)
    if "sequence_length" in given:
        chosen["sequence_lengths"] = (values["sequence_length"],)
    if "repeats" in given:
        chosen["repeats"] = values["repeats"]
    if values["output"]:
        chosen["output"] = values["output"]
        chosen["markdown"] = os.path.splitext(values["output"])[0] + ".md"
    chosen["command"] = "tfdistil benchmark --peers" + (" --quick" if values["quick"] else "")
    try:
        options = peers.PeerOptions.quick(**chosen) if values["quick"] else peers.PeerOptions(**chosen)
        options.validate()
    except ValueError as error:
        raise UsageError(str(error)) from None
    result = peers.run_peers(options)
    print(result["markdown"])


def _benchmark(values, given):
    from tfdistil.jobs.benchmark import benchmark_run

    try:
        batch_sizes = [int(b) for b in values["batch_sizes"].split(",")]
    except ValueError:
        raise UsageError(f"--batch-sizes must be comma-separated integers, got {values['batch_sizes']!r}") from None
    if values["peers"]:
        if values["run"] is not None:
            raise UsageError("--peers times fresh models of standard sizes, not a run: drop --run")
        return _benchmark_peers(values, given, batch_sizes)
    if values["quick"]:
        raise UsageError("--quick goes with --peers")
    _require(values, REQUIRED["benchmark"])
    result = benchmark_run(values["run"], batch_sizes, values["sequence_length"], values["repeats"],
                           output=values["output"])
    print(result["table"])


HANDLERS = {"benchmark": _benchmark, "finetune": _finetune, "distill": _distill, "evaluate": _evaluate, "predict": _predict,
            "export": _export}


def main(argv=None):
    from tfdistil.data import DataError
    from tfdistil.jobs import RunError

    argv = list(sys.argv[1:] if argv is None else argv)
    parser, commands = _build()
    if not argv or argv[0] not in commands:
        parser.parse_args(argv)  # top-level --help, or an error naming the valid commands
        return 2
    command = argv[0]
    try:
        values, given = _parse(commands[command], argv[1:])
        HANDLERS[command](values, given)
    except (UsageError, RunError, DataError) as error:
        message = " ".join(str(error).split())  # one line
        print(f"tfdistil {command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
