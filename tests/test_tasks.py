"""The task declarations and the one run configuration: every declaration names a head, a serving
signature and settings that exist; every setting has one name that the CLI, config files and
Python share; the CLI's lists agree with the library's."""
import dataclasses

import pytest

from tfdistil import cli
from tfdistil.jobs.config import PARTS, RunConfig, StudentConfig


def test_every_declaration_is_consistent_with_the_export_and_the_settings():
    from tfdistil.distillation import OutputComparison
    from tfdistil.export.signatures import SERVING_MODULES
    from tfdistil.jobs.config import DataConfig
    from tfdistil.models.tasks import Task
    from tfdistil.tasks import TASKS

    data_fields = {f.name for f in dataclasses.fields(DataConfig)}
    for name, spec in TASKS.items():
        assert spec.name == name
        assert issubclass(spec.head, Task)
        # The export serves the declaration's head with the signature the declaration names.
        assert SERVING_MODULES[spec.serving].model_class is spec.head
        assert set(spec.data_settings) <= data_fields
        assert spec.main_metric
        if getattr(spec, "trainable", True):  # the embedding task has no training yet
            assert isinstance(spec.distill_comparison(), OutputComparison)
        assert spec.finetune_monitor[1] in ("max", "min") and spec.distill_monitor[1] in ("max", "min")
    assert sorted(cli.TASK_NAMES) == sorted(TASKS)


def test_unknown_and_planned_tasks_are_named():
    from tfdistil.tasks import get_task

    with pytest.raises(ValueError, match=r"unknown task 'general'.*planned"):
        get_task("general")
    with pytest.raises(ValueError, match=r"tasks: \['classification', 'embedding', 'ner', 'qa', 'regression'\]"):
        get_task("nope")


def test_run_config_has_one_flat_name_per_setting():
    names = [f.name for cls in PARTS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))
    config = RunConfig.from_flat({"batch_size": 16, "alpha": 0.3, "seed": 7, "preset": "bert_mini"})
    assert (config.data.batch_size, config.student.alpha, config.training.seed, config.teacher.preset) == (
        16, 0.3, 7, "bert_mini")
    assert RunConfig.from_flat(config.flat()) == config
    assert config.replace(alpha=0.9).student.alpha == 0.9 and config.student.alpha == 0.3
    with pytest.raises(ValueError, match=r"unknown settings \['alpah'\]"):
        RunConfig.from_flat({"alpah": 0.3})


def test_every_distiller_knob_is_a_distill_flag():
    _, commands = cli._build()
    options = {a.dest: a for a in commands["distill"]._actions}
    for field in dataclasses.fields(StudentConfig):
        assert field.name in options, field.name
        assert options[field.name].option_strings[0] == "--" + field.name.replace("_", "-")


def test_cli_precision_choices_are_the_librarys():
    from tfdistil.training.precision import POLICIES

    assert cli.PRECISIONS == (*POLICIES, "auto")


def test_config_file_and_flags_fill_the_same_settings(tmp_path):
    """A YAML file with a finetune alias (`epochs`), a list (`layer_map`) and a bool gives the same
    values as the flags."""
    _, commands = cli._build()
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 4\nlayer_map: [0, 2]\nhard_labels_baseline: false\nverbose: 0\n", encoding="utf-8")
    values, given = cli._parse(commands["distill"], ["--config", str(path)], "distill")
    flags, _ = cli._parse(commands["distill"], ["--epochs", "4", "--layer-map", "0,2", "--no-hard-labels-baseline",
                                                "--verbose", "0"], "distill")
    for key in ("student_epochs", "layer_map", "hard_labels_baseline", "verbose"):
        assert values[key] == flags[key], key
    assert (values["student_epochs"], values["layer_map"], values["verbose"]) == (4, [0, 2], 0)
    assert {"student_epochs", "layer_map", "hard_labels_baseline", "verbose"} <= given
    bad = tmp_path / "bad.yaml"
    bad.write_text("layer_map: [0, two]\n", encoding="utf-8")
    with pytest.raises(cli.UsageError, match="layer_map: expected a list of integers"):
        cli._parse(commands["distill"], ["--config", str(bad)], "distill")


def test_distillation_lesson_follows_the_rows_and_the_run():
    from tfdistil.tasks.base import distillation_lesson

    rows = [{"m": 0.95}, {"m": 0.93}, {"m": 0.90}]
    won = distillation_lesson(rows, "m", train_examples=3000, augmented=1200, from_teacher_layers=False,
                              disagreements=450)
    assert won.startswith("Why distillation wins: both students start from random weights")
    assert "on 1,200 perturbed copies" in won
    assert "disagrees with 450 of the 3,000 training labels (15.0%)" in won
    lost = distillation_lesson([rows[0], rows[2], rows[1]], "m", train_examples=60, augmented=0,
                               from_teacher_layers=True)
    assert lost.startswith("Why distillation does not win here: both students start from the teacher's own layers")
    assert "perturbed" not in lost and "disagrees" not in lost
    stalled = distillation_lesson([rows[0], rows[2], rows[1]], "m", train_examples=60, augmented=0,
                                  from_teacher_layers=False)
    assert stalled.startswith("Why distillation does not win here: both students start from random weights")
    assert "compare over seeds" in stalled
    # A tie is not a win; without the hard-label twin there is nothing to explain.
    assert distillation_lesson([rows[0], rows[1], rows[1]], "m", train_examples=1, augmented=0,
                               from_teacher_layers=True).startswith("Why distillation does not win")
    assert distillation_lesson(rows[:2], "m", train_examples=1, augmented=0, from_teacher_layers=True) == ""
