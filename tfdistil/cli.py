"""`tfdistil` on the command line. Thin: parses arguments, then calls the library."""
import argparse
import dataclasses
import sys


def _add_default_run_args(parser):
    from tfdistil.recipes import DefaultRunConfig

    defaults = DefaultRunConfig()
    for field in dataclasses.fields(DefaultRunConfig):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=type(getattr(defaults, field.name)), default=getattr(defaults, field.name),
                            help=f"(default: {getattr(defaults, field.name)})")


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
