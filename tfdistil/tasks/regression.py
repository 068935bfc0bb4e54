"""Text regression, single sentences and sentence pairs: a float score a text (GLUE STS-B).

Read with the classification reader (float labels), fine-tuned with squared error, distilled with
squared errors to the gold and the teacher's scores, scored as GLUE scores STS-B: Pearson and
Spearman correlation (scipy), Pearson the main metric."""
import numpy as np

from tfdistil.tasks.base import TaskSpec, add_speedups, run_markdown, size_and_speed, students_sentence
from tfdistil.tasks.classification import MODEL_COLUMNS as CLASSIFIER_COLUMNS
from tfdistil.tasks.classification import parse_text_inputs, text_outputs

MODEL_COLUMNS = [
    ("model", "model", "{}"),
    ("pearson", "dev Pearson", "{:.4f}"),
    ("spearman", "dev Spearman", "{:.4f}"),
    ("mse", "dev MSE", "{:.4f}"),
    *CLASSIFIER_COLUMNS[2:],  # parameters, size, latencies, speed-up
]


class Regression(TaskSpec):
    name = "regression"
    serving = "text_regression"
    hf_task = "text_regression"  # `tfdistil.convert.load_hf` task
    main_metric = "pearson"
    # Logged by `epoch_callbacks` (a correlation over the whole dev set is not a Keras metric).
    finetune_monitor = ("val_pearson", "max")
    distill_monitor = ("val_pearson", "max")
    augmentable = True  # copies scored NaN: the teacher's score is their target
    data_settings = ("text_column", "text_pair_column", "label_column", "augment_copies")

    @property
    def head(self):
        from tfdistil.models import TextRegressor

        return TextRegressor

    def build_head(self, backbone, num_classes, name=None):
        if num_classes != 1:
            raise ValueError(f"a regression head has one output, got num_classes={num_classes}")
        return self.head(backbone, name=name)

    # ----- data
    def read(self, path, data_config, label_names=None):
        from tfdistil.data import read_text_classification

        # `label_names` is a run's label_names.json: None for a regression run.
        return read_text_classification(
            path, text_column=data_config.text_column, label_column=data_config.label_column,
            text_pair_column=data_config.text_pair_column, label_names=label_names, regression=True,
        )

    def describe_data(self, data):
        return f"scores from {float(np.min(data.labels)):g} to {float(np.max(data.labels)):g}"

    def recorded_settings(self, data):
        return {"text_pairs": data.text_pairs is not None}

    def vocabulary_texts(self, data):
        return data.texts + (data.text_pairs or [])

    def dataset(self, data, tokenizer, batch_size, **kwargs):
        from tfdistil.data import make_classification_dataset

        return make_classification_dataset(data, tokenizer, batch_size, **kwargs)

    # ----- training
    def finetune_loss(self):
        import keras

        return keras.losses.MeanSquaredError()

    def finetune_metrics(self):
        import keras

        return [keras.metrics.MeanSquaredError(name="mse")]

    def distill_metrics(self):
        return self.finetune_metrics()

    def distill_comparison(self):
        from tfdistil.distillation import PerExampleScore

        return PerExampleScore()

    def epoch_callbacks(self, dev_dataset):
        from tfdistil.tasks.metrics import DevMetrics, regression_scores

        def compute(y_true, scores):
            return {k: v for k, v in regression_scores(y_true, scores).items() if k != "mse"}  # Keras logs val_mse

        return [DevMetrics(dev_dataset, compute)]

    # ----- scoring and reports
    def predict_scores(self, model, data, tokenizer, batch_size):
        """(gold scores, predicted scores) of `data`, in the order of the (bucketed) dataset."""
        from tfdistil.tasks.metrics import predict_outputs

        ds = self.dataset(data, tokenizer, batch_size, log_truncation=False)
        y_true, scores = predict_outputs(model, ds)
        return y_true, scores.reshape(-1)

    def score(self, model, data, tokenizer, batch_size):
        from tfdistil.tasks.metrics import regression_scores

        return regression_scores(*self.predict_scores(model, data, tokenizer, batch_size))

    def model_row(self, label, model, scores, tokenizer):
        return {"model": label, **{k: scores[k] for k in ("pearson", "spearman", "mse")},
                **size_and_speed(model, tokenizer)}

    def summary(self, rows):
        add_speedups(rows)
        if len(rows) == 1:
            return f"Dev Pearson {rows[0]['pearson']:.4f}, Spearman {rows[0]['spearman']:.4f}."
        return students_sentence(rows, "pearson", ".4f", teacher="Dev Pearson: teacher")

    def markdown(self, report):
        return run_markdown("Regression run", report, MODEL_COLUMNS)

    # ----- evaluate and predict
    def evaluate(self, model_name, model, data, tokenizer, batch_size, output):
        from tfdistil.tasks.metrics import regression_scores

        y_true, scores = self.predict_scores(model, data, tokenizer, batch_size)
        return {"examples": int(len(y_true)), **regression_scores(y_true, scores), "main_metric": self.main_metric}

    def parse_inputs(self, lines, run_config):
        """Texts, or (first, second) pairs 'first<TAB>second' for a run trained on pairs."""
        return parse_text_inputs(lines, run_config)

    def predict(self, model, tokenizer, label_names, inputs, batch_size):
        """score<TAB>input of each input."""
        scores = [float(s) for batch in text_outputs(model, tokenizer, inputs, batch_size) for s in batch.reshape(-1)]
        return [f"{score:.4f}\t{shown}" for score, shown in
                zip(scores, ("\t".join(x) if isinstance(x, tuple) else x for x in inputs))]
