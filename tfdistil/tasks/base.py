"""What a task declaration says. The jobs (`tfdistil.jobs`) ask a declaration; they never ask
which task they are running.

A declaration is a `TaskSpec` subclass: how its files are read, the head it puts on a backbone
and its fine-tuning loss, how the Distiller compares teacher and student outputs, its metrics,
report rows and plots, how `predict` reads and prints, and its serving signature. What depends
on the data set (the main metric of a GLUE task) comes from `for_data`."""
import copy
import os


class InputError(ValueError):
    """An input line that `predict` cannot read for this task: a user error."""


class TaskSpec:
    """One kind of task. Subclasses fill in the class attributes and the methods below."""

    name = None            # "classification", "ner", ...: the `--task` value and config.json's `task`
    head = None            # the task model class (tfdistil.models): `head(backbone, num_classes=..., name=...)`
    serving = None         # the export's signature kind (tfdistil.export) for this head
    hf_task = None         # the `task` of `tfdistil.convert.load_hf` that puts this head on a checkpoint
    examples = "examples"  # what an example is called in log lines ("sentences" for a tagger)
    main_metric = None     # the row key that the summary and early stopping are about ("accuracy", "f1")
    # Early stopping of plain fine-tuning and of the Distiller: (monitored log, "max" or "min").
    finetune_monitor = ("val_accuracy", "max")
    distill_monitor = ("val_accuracy", "max")
    augmentable = False    # can the distilled student train on teacher-labelled augmented copies
    # The settings of `tfdistil.jobs.config.DataConfig` that this task's reader uses; the CLI
    # refuses the other tasks' ones.
    data_settings = ()
    plots = ()             # PNG files of a distillation run's report besides training_curves.png
    setting_defaults = {}  # settings the CLI uses for this task when not given (e.g. qa's sequence_length)
    # Data settings that `distill --teacher RUN` takes from the teacher's run when not given (they
    # shape the inputs the teacher was trained on, e.g. qa's windows).
    teacher_settings = ()

    def build_head(self, backbone, num_classes, name=None):
        """The task model on `backbone` with `num_classes` outputs (the data's `num_classes`)."""
        return self.head(backbone, num_classes=num_classes, name=name)

    def for_data(self, data):
        """This declaration for a data set (e.g. the main metric and the early-stopping monitor of
        its GLUE layout): itself, or a specialised copy (`with_main_metric`)."""
        return self

    def with_main_metric(self, metric, mode="max"):
        """A copy reporting and early-stopping on `metric` (logged as `val_<metric>`)."""
        spec = copy.copy(self)
        spec.main_metric = metric
        spec.finetune_monitor = spec.distill_monitor = (f"val_{metric}", mode)
        return spec

    # ----- data
    def read(self, path, data_config, label_names=None):
        """The examples of `path` (DataError naming the file, line and value on bad input)."""
        raise NotImplementedError

    def describe_data(self, data):
        """What the run log says about the labels of the training data."""
        return f"labels {data.label_names}"

    def recorded_settings(self, data):
        """What the run's config.json records about the training data (e.g. whether examples are
        sentence pairs, for `predict` and the export), besides the settings."""
        return {}

    def vocabulary_texts(self, data):
        """Strings a WordPiece vocabulary is learned from when a preset comes without one."""
        raise NotImplementedError

    def dataset(self, data, tokenizer, batch_size, **kwargs):
        """A batched `(features, labels)` tf.data.Dataset (`kwargs`: shuffle, seed, epoch,
        bucket_boundaries, log_truncation)."""
        raise NotImplementedError

    # ----- training
    def finetune_loss(self):
        raise NotImplementedError

    def finetune_metrics(self):
        return []

    def distill_comparison(self):
        """How the Distiller lines teacher and student outputs up with the labels: an
        `OutputComparison` of `tfdistil.distillation` (per example, per labelled token, ...)."""
        raise NotImplementedError

    def distill_metrics(self):
        return ["accuracy"]

    def epoch_callbacks(self, dev_dataset):
        """Keras callbacks that add the task's whole-dev-set metrics (`val_<name>`) to each epoch's
        logs, for metrics Keras does not log itself (see `tfdistil.tasks.metrics.DevMetrics`)."""
        return []

    def ignored_warnings(self):
        """Warning message patterns that fitting this head raises by design."""
        return ()

    # ----- scoring and reports
    def score(self, model, data, tokenizer, batch_size):
        """{metric: value, ...} of `model` on `data`, the task's own metrics."""
        raise NotImplementedError

    def model_row(self, label, model, scores, tokenizer):
        """The report row of one model: its scores and what else the task reports."""
        raise NotImplementedError

    def summary(self, rows):
        """One sentence about a run's rows (teacher first, then students)."""
        raise NotImplementedError

    def label_disagreements(self, teacher, data, tokenizer, batch_size):
        """How many training labels the teacher's prediction differs from (where its soft
        targets tell the distilled student something else than the label), or None where the
        task does not count them."""
        return None

    def report_extras(self, data):
        """Task-specific keys of report.json (e.g. a tagger's entity types)."""
        return {}

    def markdown(self, report):
        """report.md."""
        raise NotImplementedError

    def write_plots(self, run_dir, rows, student, dev, tokenizer, batch_size):
        """Write `self.plots` into `run_dir`."""

    # ----- evaluate and predict
    def evaluate(self, model_name, model, data, tokenizer, batch_size, output):
        """The result dict of `tfdistil evaluate` (written as JSON by the job)."""
        raise NotImplementedError

    def parse_inputs(self, lines, run_config):
        """`predict`'s input lines as the task's inputs (InputError for a line the task cannot read)."""
        return list(lines)

    def predict(self, model, tokenizer, label_names, inputs, batch_size):
        """One printable line per input, in input order."""
        raise NotImplementedError


def output_stem(path):
    return os.path.splitext(os.path.basename(str(path)))[0]


# ----- what the sequence-level tasks (classification, regression) share in their reports


def size_and_speed(model, tokenizer):
    """A report row's cost columns: parameters, weights on disk, latency at batch 1 and 32."""
    from tfdistil import evaluation

    length = int(tokenizer.sequence_length)
    return {
        "parameters": int(model.count_params()),
        "size_mb": evaluation.size_on_disk_mb(model),
        "latency_ms_batch1": evaluation.latency_ms(model, 1, length),
        "latency_ms_batch32": evaluation.latency_ms(model, 32, length),
    }


def add_speedups(rows):
    """Each row's speed-up over the first (the teacher) at batch 1 and 32."""
    for row in rows:
        for b in (1, 32):
            row[f"speedup_batch{b}"] = rows[0][f"latency_ms_batch{b}"] / row[f"latency_ms_batch{b}"]


def students_sentence(rows, key, fmt, teacher="Teacher"):
    """'Teacher X; student distilled Y vs hard labels only Z; student is Nx faster at batch 32.'"""
    versus = f" vs hard labels only {rows[2][key]:{fmt}}" if len(rows) > 2 else ""
    return (f"{teacher} {rows[0][key]:{fmt}}; student distilled {rows[1][key]:{fmt}}{versus}; "
            f"student is {rows[1]['speedup_batch32']:.2f}x faster at batch 32.")


def distillation_lesson(rows, key, *, train_examples, augmented, from_teacher_layers, disagreements=None):
    """One sentence on why the distilled student (rows[1]) is ahead of its hard-label twin
    (rows[2]), or why not, from what the run did: what the report teaches, not only its numbers.
    `disagreements`: training labels the teacher's prediction differs from (None: not counted)."""
    if len(rows) < 3:
        return ""
    start = "from the teacher's own layers" if from_teacher_layers else "from random weights"
    disagree = ""
    if disagreements:
        disagree = (f"; the teacher disagrees with {disagreements:,} of the {train_examples:,} training labels "
                    f"({disagreements / train_examples:.1%}), and there its soft targets, not the label, "
                    f"are what the distilled student learns")
    if rows[1][key] > rows[2][key]:
        more = (f" and on {augmented:,} perturbed copies of them that only the teacher can label" if augmented
                else "")
        return (f"Why distillation wins: both students start {start} and see the same {train_examples:,} labelled "
                f"examples, but the distilled one also learns from the teacher's graded confidence on each"
                f"{more}, where its twin gets one hard label per example{disagree}.")
    if not from_teacher_layers:
        return (f"Why distillation does not win here: both students start {start} and see the same "
                f"{train_examples:,} labelled examples{disagree}; a student trained from scratch on a small set "
                f"can stall before it learns the task, with soft targets or without, so one seed decides little: "
                f"compare over seeds (--seed).")
    return (f"Why distillation does not win here: both students start {start}, and the {train_examples:,} hard "
            f"labels already teach this student what the teacher knows{disagree}; soft targets add most when "
            f"labels are few or noisy, or with teacher-labelled copies (--augment-copies).")


def run_markdown(title, report, columns):
    """report.md of a sequence-level run: the rows' table, precision, dev size, time and plots."""
    from tfdistil.report import markdown_table

    lines = [
        f"# {title} `{report['name']}`", "", report.get("summary", ""), "",
        *([report["why"], ""] if report.get("why") else []),
        markdown_table(report["models"], columns), "",
        f"Precision: `{report['precision']}` ({report['precision_reason']}). "
        f"Dev set: {report['dev_examples']} examples. Wall time: {report['wall_time_s']:.0f} s.", "",
    ]
    lines += [f"![{plot}]({plot})" for plot in report.get("plots", [])]
    return "\n".join(lines) + "\n"
