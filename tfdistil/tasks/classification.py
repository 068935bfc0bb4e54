"""Text classification, single sentences and sentence pairs: a label a text.

Scored as GLUE scores it (scikit-learn): accuracy always, F1 of the positive class (class 1) for
binary tasks, Matthews correlation. The main metric (the summary's, early stopping's) comes from
the detected layout: F1 for GLUE MRPC, MCC for GLUE CoLA, accuracy otherwise."""
import numpy as np

from tfdistil.tasks.base import (
    InputError, TaskSpec, add_speedups, run_markdown, size_and_speed, students_sentence,
)

# Detected data layout (`tfdistil.data.DataFormat.name`) -> main metric, when not accuracy.
GLUE_MAIN_METRICS = {"glue-mrpc": "f1", "glue-cola": "mcc"}
METRIC_TITLES = {"accuracy": "accuracy", "f1": "F1", "mcc": "MCC"}
# Columns of report.md besides MODEL_COLUMNS' accuracy: the main metric when it is another one.
METRIC_COLUMNS = {"f1": ("f1", "dev F1", "{:.4f}"), "mcc": ("mcc", "dev MCC", "{:.4f}")}

MODEL_COLUMNS = [
    ("model", "model", "{}"),
    ("accuracy", "dev accuracy", "{:.2%}"),
    ("parameters", "parameters", "{:,}"),
    ("size_mb", "size (MB)", "{:.2f}"),
    ("latency_ms_batch1", "latency b=1 (ms)", "{:.2f}"),
    ("latency_ms_batch32", "latency b=32 (ms)", "{:.2f}"),
    ("speedup_batch32", "speed-up b=32", "{:.2f}x"),
]


class Classification(TaskSpec):
    name = "classification"
    serving = "text_classification"
    hf_task = "text_classification"  # `tfdistil.convert.load_hf` task
    main_metric = "accuracy"
    augmentable = True
    data_settings = ("text_column", "text_pair_column", "label_column", "augment_copies")
    plots = ("accuracy_vs_latency.png", "confusion_matrix.png")

    @property
    def head(self):
        from tfdistil.models import TextClassifier

        return TextClassifier

    def for_data(self, data):
        detected = getattr(data, "detected", None)
        metric = GLUE_MAIN_METRICS.get(detected.name) if detected is not None else None
        return self if metric is None else self.with_main_metric(metric)

    def read(self, path, data_config, label_names=None):
        from tfdistil.data import read_text_classification

        # Classes only: a file of float scores (GLUE STS-B) is a `regression` task's.
        return read_text_classification(
            path, text_column=data_config.text_column, label_column=data_config.label_column,
            text_pair_column=data_config.text_pair_column, label_names=label_names, regression=False,
        )

    def recorded_settings(self, data):
        return {"text_pairs": data.text_pairs is not None}

    def vocabulary_texts(self, data):
        return data.texts + (data.text_pairs or [])

    def dataset(self, data, tokenizer, batch_size, **kwargs):
        from tfdistil.data import make_classification_dataset

        return make_classification_dataset(data, tokenizer, batch_size, **kwargs)

    def finetune_loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def distill_comparison(self):
        from tfdistil.distillation import PerExample

        return PerExample()

    def finetune_metrics(self):
        return ["accuracy"]

    def epoch_callbacks(self, dev_dataset):
        if self.main_metric == "accuracy":
            return []  # Keras logs val_accuracy itself
        from tfdistil.tasks.metrics import DevMetrics, classification_scores

        def compute(y_true, logits):
            return classification_scores(y_true, np.argmax(logits, axis=-1), logits.shape[-1], ("f1", "mcc"))

        return [DevMetrics(dev_dataset, compute)]

    def score(self, model, data, tokenizer, batch_size):
        from tfdistil import evaluation
        from tfdistil.tasks.metrics import classification_scores

        ds = self.dataset(data, tokenizer, batch_size, log_truncation=False)
        y_true, y_pred = evaluation.predict_labels(model, ds)
        return classification_scores(y_true, y_pred, len(data.label_names))

    def model_row(self, label, model, scores, tokenizer):
        return {"model": label, **scores, **size_and_speed(model, tokenizer)}

    def summary(self, rows):
        add_speedups(rows)
        metric = self.main_metric
        if metric == "accuracy":
            if len(rows) == 1:
                return f"Dev accuracy {rows[0]['accuracy']:.2%}."
            return students_sentence(rows, "accuracy", ".1%")
        title = METRIC_TITLES[metric]
        if len(rows) == 1:
            return f"Dev {title} {rows[0][metric]:.4f} (accuracy {rows[0]['accuracy']:.2%})."
        return students_sentence(rows, metric, ".4f", teacher=f"Dev {title}: teacher")

    def label_disagreements(self, teacher, data, tokenizer, batch_size):
        from tfdistil import evaluation

        y_true, y_pred = evaluation.predict_labels(teacher, self.dataset(data, tokenizer, batch_size,
                                                                          log_truncation=False))
        return int(np.sum(y_true != y_pred))

    def markdown(self, report):
        columns = list(MODEL_COLUMNS)
        if self.main_metric in METRIC_COLUMNS:
            columns.insert(2, METRIC_COLUMNS[self.main_metric])
        return run_markdown("Run", report, columns)

    def write_plots(self, run_dir, rows, student, dev, tokenizer, batch_size):
        import os

        from tfdistil import evaluation, report

        report.plot_accuracy_vs_latency(rows, os.path.join(run_dir, "accuracy_vs_latency.png"))
        ds = self.dataset(dev, tokenizer, batch_size, log_truncation=False)
        y_true, y_pred = evaluation.predict_labels(student, ds)
        report.plot_confusion_matrix(y_true, y_pred, dev.label_names, os.path.join(run_dir, "confusion_matrix.png"),
                                     title="distilled student, dev")

    def evaluate(self, model_name, model, data, tokenizer, batch_size, output):
        import os

        from tfdistil import evaluation, report
        from tfdistil.tasks.metrics import classification_scores

        ds = self.dataset(data, tokenizer, batch_size, log_truncation=False)
        y_true, y_pred = evaluation.predict_labels(model, ds)
        names = data.label_names
        plot = os.path.splitext(output)[0] + "_confusion_matrix.png"
        report.plot_confusion_matrix(y_true, y_pred, names, plot, title=f"{model_name}, {os.path.basename(data.path)}")
        confusion = np.zeros((len(names), len(names)), dtype=int)
        np.add.at(confusion, (y_true, y_pred), 1)
        return {
            "examples": int(len(y_true)),
            "correct": int(np.sum(y_true == y_pred)),
            "accuracy": float(np.mean(y_true == y_pred)),
            **classification_scores(y_true, y_pred, len(names), ("f1", "mcc")),
            "main_metric": self.main_metric,
            "label_names": list(names),
            "confusion_matrix": confusion.tolist(),
            "confusion_matrix_png": plot,
        }

    def parse_inputs(self, lines, run_config):
        """Texts, or (first, second) pairs 'first<TAB>second' for a run trained on pairs."""
        return parse_text_inputs(lines, run_config)

    def predict(self, model, tokenizer, label_names, inputs, batch_size):
        """label<TAB>probability<TAB>input of each input."""
        return [f"{label}\t{probability:.4f}\t{shown}" for (label, probability), shown in
                zip(self.probabilities(model, tokenizer, label_names, inputs, batch_size),
                    ("\t".join(x) if isinstance(x, tuple) else x for x in inputs))]

    def probabilities(self, model, tokenizer, label_names, inputs, batch_size):
        """(label, probability) of each text or (first, second) pair, in input order."""
        results = []
        for logits in text_outputs(model, tokenizer, inputs, batch_size):
            logits = np.asarray(logits, dtype=np.float64)  # (batch, classes)
            logits -= logits.max(axis=-1, keepdims=True)
            probs = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
            for row in probs:
                k = int(np.argmax(row))
                results.append((label_names[k], float(row[k])))
        return results


def parse_text_inputs(lines, run_config):
    """`predict`'s lines as texts, or as (first, second) pairs 'first<TAB>second' for a run trained
    on pairs (a text_pair_column, or a layout of two texts such as GLUE MRPC's and STS-B's)."""
    if not (run_config.get("text_pair_column") or run_config.get("text_pairs")):
        return list(lines)
    for number, text in enumerate(lines, 1):
        if "\t" not in text:
            raise InputError(f"input {number} ({text[:60]!r}) has no TAB: this run was trained on sentence "
                             "pairs; give each as 'first<TAB>second'")
    return [tuple(text.split("\t", 1)) for text in lines]


def text_outputs(model, tokenizer, inputs, batch_size):
    """The model's outputs (numpy) on texts or (first, second) pairs, one array a batch, in order."""
    import tensorflow as tf

    from tfdistil import evaluation

    infer = evaluation.inference_function(model)
    for i in range(0, len(inputs), batch_size):
        chunk = inputs[i: i + batch_size]
        if chunk and isinstance(chunk[0], tuple):
            segments = [tf.constant([a for a, _ in chunk], tf.string), tf.constant([b for _, b in chunk], tf.string)]
        else:
            segments = [tf.constant(chunk, tf.string)]
        yield np.asarray(infer(tokenizer(*segments)))
