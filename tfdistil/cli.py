"""`tfdistil` on the command line. Thin: parses arguments, then calls the library."""
import argparse
import dataclasses
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
    "patience": "early-stopping patience in epochs (best weights restored)",
    "verbose": "Keras fit verbosity (0 silent, 1 progress bar, 2 one line per epoch)",
}


def _add_default_run_args(parser):
    from tfdistil.recipes import DefaultRunConfig

    defaults = DefaultRunConfig()
    from tfdistil.training.precision import POLICIES

    choices = {"precision": POLICIES + ("auto",)}
    for field in dataclasses.fields(DefaultRunConfig):
        flag = "--" + field.name.replace("_", "-")
        default = getattr(defaults, field.name)
        help_text = FLAG_HELP.get(field.name, "")
        parser.add_argument(flag, type=type(default), default=default, choices=choices.get(field.name),
                            help=f"{help_text} (default: {default})".strip())


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfdistil", description="Distil BERT into smaller, faster students (Keras 3 / TensorFlow)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    distill = sub.add_parser(
        "distill",
        help="Distil a student from a teacher. With no data arguments: the embedded default run "
        "(teacher from scratch on the built-in sentiment data, student with half its layers).",
    )
    _add_default_run_args(distill)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "distill":
        from tfdistil.recipes import DefaultRunConfig, distill_default

        fields = {f.name for f in dataclasses.fields(DefaultRunConfig)}
        distill_default(DefaultRunConfig(**{k: v for k, v in vars(args).items() if k in fields}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
