"""One run configuration, built from shared parts: what data, which teacher, which student,
how to train. The CLI's flags, a `--config` YAML/JSON file and the Python API fill it the same
way: every field has one flat name (`batch_size`, `student_hidden_dim`, ...), which is its
command-line flag (`--batch-size`) and its key in a config file and in the run's config.json.

    config = RunConfig.from_flat({"train": "train.tsv", "dev": "dev.tsv", "hf": "bert/"})
    config.data.batch_size, config.teacher.hf, config.student.alpha, config.training.seed
"""
import dataclasses


@dataclasses.dataclass
class DataConfig:
    """Where the examples come from and how they are batched."""

    task: str | None = None  # None: detected from the files (see tfdistil.tasks.detect_task)
    train: str | None = None
    dev: str | None = None
    text_column: str | None = None
    text_pair_column: str | None = None
    label_column: str = "label"
    tag_column: int = 1
    sequence_length: int = 128
    batch_size: int = 32
    augment_copies: int = 0
    doc_stride: int = 128  # qa: context pieces between the starts of two windows
    max_question_length: int = 64  # qa: question pieces kept


@dataclasses.dataclass
class TeacherConfig:
    """The teacher: fine-tuned here (`hf` or `preset`), or a finished run (`teacher`)."""

    teacher: str | None = None  # run folder of a fine-tuned teacher (distill)
    hf: str | None = None
    preset: str | None = None
    vocabulary: str | None = None
    vocabulary_size: int = 1000
    teacher_num_layers: int | None = None
    teacher_epochs: int = 3
    teacher_learning_rate: float | None = None  # None: 5e-5 from a checkpoint, 5e-4 from scratch


@dataclasses.dataclass
class StudentConfig:
    """The DistilBERT student and every Distiller knob. A student as wide as the teacher (same
    hidden_dim and num_heads) starts from the teacher's layers `layer_map`; a narrower one
    starts from random weights."""

    student_layers: int | None = None  # None: half the teacher's
    student_hidden_dim: int | None = None  # None: the teacher's
    student_num_heads: int | None = None
    student_intermediate_dim: int | None = None
    layer_map: list[int] | None = None  # teacher layer of each student layer; None: the default map
    student_epochs: int = 10
    student_learning_rate: float = 5e-4
    alpha: float = 0.5
    temperature: float = 2.0
    hidden_cosine_weight: float = 1.0
    hidden_mse_weight: float = 0.0
    attention_weight: float = 0.0
    hard_labels_baseline: bool = True
    cache_teacher_logits: bool = False  # teacher's logits computed once (output terms only)


@dataclasses.dataclass
class TrainingConfig:
    """How any model of the run is trained and where the run lives."""

    name: str = "run"
    runs_dir: str = "runs"
    precision: str = "auto"
    seed: int = 0
    patience: int | None = 5
    verbose: int | str = "auto"  # "auto": a progress bar on a terminal, one line an epoch otherwise


PARTS = {"data": DataConfig, "teacher": TeacherConfig, "student": StudentConfig, "training": TrainingConfig}


def _flat_fields():
    fields = {}
    for part, cls in PARTS.items():
        for field in dataclasses.fields(cls):
            fields[field.name] = part
    return fields


FIELDS = _flat_fields()  # flat name -> part


@dataclasses.dataclass
class RunConfig:
    """The whole configuration of a run: `data`, `teacher`, `student`, `training`."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    teacher: TeacherConfig = dataclasses.field(default_factory=TeacherConfig)
    student: StudentConfig = dataclasses.field(default_factory=StudentConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)

    @classmethod
    def from_flat(cls, values=None, **more):
        """A RunConfig from flat names (`{"batch_size": 16, "alpha": 0.3}`); unknown names raise
        ValueError naming them."""
        values = dict(values or {}, **more)
        unknown = sorted(k for k in values if k not in FIELDS)
        if unknown:
            raise ValueError(f"unknown settings {unknown}; known: {sorted(FIELDS)}")
        parts = {part: {} for part in PARTS}
        for key, value in values.items():
            parts[FIELDS[key]][key] = value
        return cls(**{part: PARTS[part](**kwargs) for part, kwargs in parts.items()})

    def flat(self):
        """{flat name: value} of every field: what config.json records."""
        out = {}
        for part in PARTS:
            out.update(dataclasses.asdict(getattr(self, part)))
        return out

    def replace(self, **values):
        """A copy with the given flat names changed."""
        return RunConfig.from_flat(dict(self.flat(), **values))

    @property
    def run_dir(self):
        import os

        return os.path.join(self.training.runs_dir, self.training.name)


# What each command starts from before flags and config files: fine-tuning takes fewer, earlier-
# stopped epochs than distilling; the embedded default run is the README's quick start.
FINETUNE_DEFAULTS = {"name": "finetune", "patience": 2}
DISTILL_DEFAULTS = {"name": "distill", "patience": 5}
# The quick start: a 4-layer teacher, and a student a quarter as wide from random weights, where
# the teacher's soft targets have something to add over the (noisy) labels; docs/quickstart.md.
EMBEDDED_DEFAULTS = {
    "name": "quickstart", "task": "classification", "sequence_length": 32, "vocabulary_size": 1000,
    "preset": "bert_tiny", "teacher_num_layers": 4, "teacher_epochs": 8, "teacher_learning_rate": 5e-4,
    "student_hidden_dim": 64, "student_num_heads": 2, "student_intermediate_dim": 256, "hidden_cosine_weight": 0.0,
    "student_epochs": 6, "student_learning_rate": 5e-4, "patience": 5,
}
