"""Dev-set metrics computed as GLUE computes them (scikit-learn and scipy), and the callback that
logs them at each epoch's end so that TensorBoard, the history and early stopping see them.

Keras' streaming metrics cannot give a rank correlation or an F1 over the whole dev set; these
are computed on all of the dev set's predictions at once."""
import warnings

import keras
import numpy as np


def predict_outputs(model, dataset):
    """(labels, model outputs) of every batch of a `(features, labels)` dataset, concatenated."""
    from tfdistil import evaluation

    infer = evaluation.inference_function(model)
    y_true, outputs = [], []
    for x, y in dataset:
        outputs.append(np.asarray(infer(x)))
        y_true.append(np.asarray(y))
    return np.concatenate(y_true), np.concatenate(outputs)


def classification_scores(y_true, y_pred, num_classes, metrics=("accuracy", "f1", "mcc")):
    """{"accuracy", "f1" (binary tasks: F1 of class 1, the positive one), "mcc"} of class ids,
    restricted to `metrics`."""
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    scores = {}
    if "accuracy" in metrics:
        scores["accuracy"] = float(accuracy_score(y_true, y_pred))
    if "f1" in metrics and num_classes == 2:
        scores["f1"] = float(f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0))
    if "mcc" in metrics:
        scores["mcc"] = float(matthews_corrcoef(y_true, y_pred))
    return scores


def regression_scores(y_true, scores):
    """{"pearson", "spearman", "mse"} of predicted against gold scores. A correlation with a
    constant input (undefined: scipy gives NaN) counts as 0, so that early stopping can compare it."""
    from scipy.stats import ConstantInputWarning, pearsonr, spearmanr

    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        pearson = float(pearsonr(scores, y_true).statistic)
        spearman = float(spearmanr(scores, y_true).statistic)
    return {
        "pearson": pearson if np.isfinite(pearson) else 0.0,
        "spearman": spearman if np.isfinite(spearman) else 0.0,
        "mse": float(np.mean(np.square(scores - y_true))),
    }


class DevMetrics(keras.callbacks.Callback):
    """Adds `val_<name>` to each epoch's logs: `compute(labels, outputs)` -> {name: value} on the
    model's outputs for the whole `dataset`. Put it before the callbacks that read the logs
    (TensorBoard; Keras' History and progress bar come last anyway).

    The model is the one `fit` trains: a task model, or a Distiller (whose call is its student).
    `predict(model, dataset)` -> (labels, outputs) replaces `predict_outputs` for outputs that do
    not concatenate (span QA's windows of several widths)."""

    def __init__(self, dataset, compute, predict=predict_outputs):
        super().__init__()
        self.dataset = dataset
        self.compute = compute
        self.predict = predict

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        y_true, outputs = self.predict(self.model, self.dataset)
        for name, value in self.compute(y_true, outputs).items():
            logs[f"val_{name}"] = value
