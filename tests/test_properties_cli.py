"""Property test: every bad value of a command-line option, and of the same setting in a --config
file, is exit code 2 with one line on stderr that names the option, before anything runs.

`tfdistil.cli.main` is called in this process (a parse error stops it before TensorFlow work).
Which values are bad comes from this file's own table (not from the CLI's): any text that Python
cannot read as the option's number type, numbers outside the documented range of the setting,
non-finite floats, strings outside an option's choices, unknown options. Bounded: a fixed number
of derandomized examples.
"""
import contextlib
import io
import json
import math
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfdistil import cli

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

NEG = st.integers(max_value=-1)
NONPOS = st.integers(max_value=0)
# Settings that must be positive counts / sizes, >= 0, probabilities, ...: out-of-range values.
BAD_NUMBERS = {
    "batch-size": NONPOS, "sequence-length": st.integers(max_value=2), "vocabulary-size": st.integers(max_value=5),
    "teacher-num-layers": NONPOS, "num-layers": NONPOS, "teacher-epochs": NONPOS, "epochs": NONPOS,
    "student-layers": NONPOS, "student-epochs": NONPOS, "student-hidden-dim": NONPOS, "student-num-heads": NONPOS,
    "student-intermediate-dim": NONPOS, "patience": NEG,  # a negative --augment-copies: test_cli
    "seed": st.one_of(NEG, st.integers(min_value=2**32)),
    "learning-rate": st.floats(max_value=-1e-12), "teacher-learning-rate": st.floats(max_value=-1e-12),
    "student-learning-rate": st.floats(max_value=-1e-12),
    "alpha": st.one_of(st.floats(max_value=-1e-12), st.floats(min_value=1 + 1e-9)),
    "temperature": st.floats(max_value=0), "hidden-cosine-weight": st.floats(max_value=-1e-12),
    "hidden-mse-weight": st.floats(max_value=-1e-12), "attention-weight": st.floats(max_value=-1e-12),
}
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)


def accepted(values, given):
    raise AssertionError(f"parsed without an error: {sorted(given)}")


def run(argv):
    """(exit code, stdout, stderr) of the CLI; a command that parses does not run (its handler
    fails the test instead of training)."""
    out, err = io.StringIO(), io.StringIO()
    stubs = {name: accepted for name in cli.HANDLERS}
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), mock.patch.dict(cli.HANDLERS, stubs):
        try:
            code = cli.main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def options():
    """[(command, flag, argparse action)] of every option whose value is checked (a number, a
    choice, the verbosity, the layer map; not the free strings: paths, column names)."""
    _, commands = cli._build()
    found = []
    for command, parser in commands.items():
        for action in parser._actions:  # argparse has no public list of a parser's options
            for flag in action.option_strings:
                checked = action.choices is not None or getattr(action.type, "__name__", None) is not None
                if flag.startswith("--") and action.nargs != 0 and checked:
                    found.append((command, flag[2:], action))
    return found


OPTIONS = options()


def not_an(kind):
    def bad(text):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            return True
        return kind is float and not math.isfinite(value)
    return TEXT.filter(bad)


@st.composite
def bad_values(draw):
    """(command, flag, value as text) with a value the option must refuse."""
    command, flag, action = draw(st.sampled_from(OPTIONS))
    kinds = []
    if action.choices is not None:
        kinds.append(TEXT.filter(lambda v: v not in action.choices))
    elif flag == "verbose":
        kinds.append(TEXT.filter(lambda v: v not in ("auto", "0", "1", "2")))
    elif flag == "layer-map":
        def not_int(v):
            try:
                int(v.replace(" ", ""))
            except ValueError:
                return v.replace(" ", "") != ""  # empty items are skipped ("0,1," is [0, 1])
            return False
        kinds.append(st.tuples(st.integers(0, 3), TEXT.filter(lambda v: "," not in v and not_int(v)))
                     .map(lambda t: f"{t[0]},{t[1]}"))
    elif getattr(action.type, "__name__", None) in ("int", "float"):
        kind = int if action.type.__name__ == "int" else float
        kinds.append(not_an(kind) if kind is int else st.one_of(not_an(float), st.sampled_from(["nan", "inf", "-inf"])))
        if flag in BAD_NUMBERS and (command in ("finetune", "distill") or flag == "batch-size"):
            kinds.append(BAD_NUMBERS[flag].map(str))
        if kind is int:
            kinds.append(st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)).map(repr))
    return command, flag, draw(st.one_of(*kinds))


@SETTINGS
@given(case=bad_values(), equals=st.booleans())
def test_bad_option_value_is_exit_2_with_one_line(case, equals):
    command, flag, value = case
    argv = [command, f"--{flag}={value}"] if equals else [command, f"--{flag}", value]
    code, out, err = run(argv)
    assert code == 2, (argv, out, err)
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, (argv, err)
    assert err.startswith(f"tfdistil {command}: error: "), err
    assert f"--{flag}" in err, err


@SETTINGS
@given(case=bad_values())
def test_bad_config_value_is_exit_2_with_one_line(tmp_path_factory, case):
    if case[0] not in ("finetune", "distill"):
        return  # only the training commands read --config
    command, flag, value = case
    key = flag.replace("-", "_")
    path = tmp_path_factory.getbasetemp() / "bad_config.json"
    path.write_text(json.dumps({key: value}), encoding="utf-8")
    code, out, err = run([command, "--config", str(path)])
    assert code == 2, (key, value, out, err)
    assert out == "" and err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith(f"tfdistil {command}: error: config file {path}: {key}"), err


@SETTINGS
@given(command=st.sampled_from(sorted(cli.COMMANDS)),
       name=st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12))
def test_unknown_option_is_exit_2_with_one_line(command, name):
    _, commands = cli._build()
    flag = f"--{name}"
    if any(s.startswith(flag) for a in commands[command]._actions for s in a.option_strings):
        return  # a known option, or a prefix argparse expands
    code, out, err = run([command, flag])
    assert code == 2 and out == "" and err.count("\n") == 1 and flag in err, err
