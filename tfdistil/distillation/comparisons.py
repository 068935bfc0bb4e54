"""How the Distiller lines teacher and student outputs up with the labels, per kind of task.

A comparison says which positions of the outputs count, how sample weights spread over them, what
the hard labels are and what the metrics see. The loss terms (`terms.py`) then compute on what it
returns, whatever the task:

- `PerExample`: one distribution per example (sequence classification), logits (batch, classes).
- `PerLabelledToken`: one per token (token classification, masked LM), logits (batch, seq,
  classes); labels equal to -100 and padding are left out.
- `PerExampleScore`: one score per example (regression), outputs (batch, 1), float labels; its
  output terms are squared errors (`ScoreMSE`) instead of cross-entropy and soft targets.

- `SpanPositions`: span QA, dict outputs `start_logits` / `end_logits`, each (batch, seq), labels
  a dict of start and end positions: two distributions per example over its real tokens.

A comparison also names the output terms that the Distiller's `alpha` and `temperature` stand for
(`output_terms`). Task declarations hand the Distiller the comparison for their task.
"""
import dataclasses

import keras
from keras import ops

from tfdistil.distillation import losses
from tfdistil.distillation.terms import HardLabels, ScoreMSE, SoftTargets
from tfdistil.models.tasks import SpanQA, TextRegressor


@dataclasses.dataclass
class LogitPair:
    """One teacher/student output to compare, with what the terms weigh it by.

    teacher, student: logits (..., classes), the last axis the distribution.
    labels: hard labels, one per distribution (IGNORE_INDEX where there is none).
    weights: float32 weight of each distribution (sample weight times whether it counts).
    hard_weights: `weights` where a hard label exists, else 0.
    denominator: how many distributions count over the global batch (`losses.global_count`).
    """

    teacher: object
    student: object
    labels: object
    weights: object
    hard_weights: object
    denominator: object


class OutputComparison:
    """Base class: how one kind of task's outputs are compared (see the module docstring).

    Subclasses implement the four methods; `get_config` / `from_config` make them part of a
    Distiller's config (register subclasses with `keras.saving.register_keras_serializable`).
    """

    # What a single-output comparison accepts: `accepts(shape)` of the outputs' shape after the
    # batch axis (checked equal in teacher and student), and how to say it in an error.
    expects = None

    def accepts(self, shape):
        raise NotImplementedError

    def validate(self, teacher, student):
        """Raise ValueError when the two task models' outputs cannot be compared this way."""
        for model in (teacher, student):
            _check_single_output(model)
        if not self.accepts(_check_same_outputs(teacher, student)):
            raise ValueError(
                f"{type(self).__name__} compares {self.expects}; {type(student).__name__} gives "
                f"{tuple(student.output.shape)}."
            )

    def logit_pairs(self, x, y, sample_weight, teacher_logits, student_logits):
        """The list of `LogitPair`s the output terms (hard labels, soft targets) compare."""
        raise NotImplementedError

    def token_weights(self, x, y, sample_weight):
        """(weights (batch, seq), global count of real tokens): how the intermediate terms
        (hidden states, attention) weigh each token."""
        raise NotImplementedError

    def metric_targets(self, x, y, sample_weight):
        """(labels, sample weights, valid) for the compiled metrics: labels with the ignored ones
        replaced by 0, weights zero there, `valid` 1.0 where a label counts."""
        raise NotImplementedError

    def output_terms(self, alpha, temperature):
        """The output terms of the Distiller's `alpha` and `temperature`: cross-entropy on the
        hard labels (`alpha`) and Hinton's soft targets (`1 - alpha`)."""
        return [HardLabels(weight=alpha), SoftTargets(temperature, weight=1.0 - float(alpha))]

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_same_outputs(teacher, student):
    t_shape, s_shape = tuple(teacher.output.shape[1:]), tuple(student.output.shape[1:])
    if len(t_shape) != len(s_shape) or t_shape[-1] != s_shape[-1]:
        raise ValueError(
            f"Teacher and student outputs differ: teacher {type(teacher).__name__} gives "
            f"(batch, {', '.join(map(str, t_shape))}), student {type(student).__name__} gives "
            f"(batch, {', '.join(map(str, s_shape))})."
        )
    return s_shape


def _check_single_output(model):
    if isinstance(model.output, dict):
        raise ValueError(f"Distillation of {type(model).__name__} (dict outputs) is not supported.")


def default_comparison(teacher, student):
    """The automatic choice: span positions for `SpanQA`, per example score for a `TextRegressor`,
    per labelled token for (batch, seq, classes) outputs, else per example."""
    if isinstance(student, SpanQA) and isinstance(teacher, SpanQA):
        return SpanPositions()
    for model in (teacher, student):
        _check_single_output(model)
    s_shape = _check_same_outputs(teacher, student)
    if isinstance(student, TextRegressor):
        return PerExampleScore()
    return PerLabelledToken() if len(s_shape) == 2 else PerExample()


def _token_denominator(x):
    padding_mask = ops.cast(x["padding_mask"], "float32")
    return padding_mask, losses.global_count(ops.sum(padding_mask))


@keras.saving.register_keras_serializable(package="tfdistil")
class PerExample(OutputComparison):
    """One distribution per example: logits (batch, classes), labels (batch,). An example
    labelled -100 (augmented text) learns from the teacher's terms alone and metrics skip it."""

    expects = "(batch, classes) outputs"

    def accepts(self, shape):
        return len(shape) == 1

    @staticmethod
    def _sample_weight(sample_weight):
        # Reshaped by value: inside fit() its rank may be unknown.
        return ops.reshape(ops.cast(sample_weight, "float32"), (-1,))

    def logit_pairs(self, x, y, sample_weight, teacher_logits, student_logits):
        mask = ops.ones((ops.shape(y)[0],), "float32")
        labelled = losses.label_mask(ops.reshape(y, (-1,)))
        weights = mask
        if sample_weight is not None:
            weights = weights * self._sample_weight(sample_weight)
        denominator = losses.global_count(ops.sum(mask))
        return [LogitPair(teacher_logits, student_logits, y, weights, weights * labelled, denominator)]

    def token_weights(self, x, y, sample_weight):
        padding_mask, denominator = _token_denominator(x)
        if sample_weight is not None:
            padding_mask = padding_mask * self._sample_weight(sample_weight)[:, None]
        return padding_mask, denominator

    def metric_targets(self, x, y, sample_weight):
        y = ops.reshape(y, (-1,))
        valid = losses.label_mask(y)
        weights = valid
        if sample_weight is not None:
            weights = valid * self._sample_weight(sample_weight)
        return ops.where(valid > 0, y, ops.zeros_like(y)), weights, valid


@keras.saving.register_keras_serializable(package="tfdistil")
class PerLabelledToken(OutputComparison):
    """One distribution per token: logits (batch, seq, classes), labels (batch, seq). Tokens
    labelled -100 and padding do not count; sample weights are (batch, 1) or (batch, seq)."""

    expects = "(batch, seq, classes) outputs"

    def accepts(self, shape):
        return len(shape) == 2

    @staticmethod
    def _sample_weight(sample_weight, y):
        return ops.reshape(ops.cast(sample_weight, "float32"), (ops.shape(y)[0], -1))

    def logit_pairs(self, x, y, sample_weight, teacher_logits, student_logits):
        mask = losses.label_mask(y, ops.cast(x["padding_mask"], "float32"))
        weights = mask
        if sample_weight is not None:
            weights = weights * self._sample_weight(sample_weight, y)
        denominator = losses.global_count(ops.sum(mask))
        return [LogitPair(teacher_logits, student_logits, y, weights, weights * mask, denominator)]

    def token_weights(self, x, y, sample_weight):
        padding_mask, denominator = _token_denominator(x)
        if sample_weight is not None:
            padding_mask = padding_mask * self._sample_weight(sample_weight, y)
        return padding_mask, denominator

    def metric_targets(self, x, y, sample_weight):
        valid = losses.label_mask(y, x["padding_mask"])
        weights = valid
        if sample_weight is not None:
            weights = valid * self._sample_weight(sample_weight, y)
        return ops.where(valid > 0, y, ops.zeros_like(y)), weights, valid


@keras.saving.register_keras_serializable(package="tfdistil")
class PerExampleScore(PerExample):
    """One score per example (regression): outputs (batch, 1), float labels (batch,). Compared by
    squared errors: student vs gold scores (`alpha`) and student vs teacher scores (`1 - alpha`);
    the temperature has no role. An example scored NaN (augmented text) has no gold score: it
    learns from the teacher's score alone and metrics skip it."""

    expects = "one-output (batch, 1) scores"

    def accepts(self, shape):
        return tuple(shape) == (1,)

    @staticmethod
    def _scores(y):
        """(gold scores with NaN replaced by 0, 1.0 where a gold score exists)."""
        y = ops.reshape(ops.cast(y, "float32"), (-1,))
        scored = ops.logical_not(ops.isnan(y))
        return ops.where(scored, y, ops.zeros_like(y)), ops.cast(scored, "float32")

    def logit_pairs(self, x, y, sample_weight, teacher_logits, student_logits):
        labels, scored = self._scores(y)
        mask = ops.ones_like(labels)
        weights = mask if sample_weight is None else mask * self._sample_weight(sample_weight)
        denominator = losses.global_count(ops.sum(mask))
        return [LogitPair(teacher_logits, student_logits, labels, weights, weights * scored, denominator)]

    def metric_targets(self, x, y, sample_weight):
        y, valid = self._scores(y)
        weights = valid if sample_weight is None else valid * self._sample_weight(sample_weight)
        return y, weights, valid

    def output_terms(self, alpha, temperature):
        return [ScoreMSE("labels", weight=alpha), ScoreMSE("teacher", weight=1.0 - float(alpha))]


# Logit of a padding position in a span distribution: out of the softmax, finite so that
# 0 * (log p - log q) stays 0 (float32).
_PADDING_LOGIT = -1e9
SPAN_OUTPUTS = ("start_logits", "end_logits")


@keras.saving.register_keras_serializable(package="tfdistil")
class SpanPositions(OutputComparison):
    """Span QA: dict outputs `start_logits` and `end_logits`, each (batch, seq); labels a dict of
    the same keys, the answer's start and end positions (batch,). Two distributions per example
    (start and end) over its real tokens (padding is left out of both softmaxes): the hard and
    soft terms average over the two, as BertForQuestionAnswering's loss does."""

    expects = "dict outputs start_logits and end_logits, each (batch, seq)"

    def validate(self, teacher, student):
        for model in (teacher, student):
            output = model.output
            if not isinstance(output, dict) or set(output) != set(SPAN_OUTPUTS) or any(
                    len(output[k].shape) != 2 for k in SPAN_OUTPUTS):
                shape = ({k: tuple(v.shape) for k, v in output.items()} if isinstance(output, dict)
                         else tuple(output.shape))
                raise ValueError(f"SpanPositions compares {self.expects}; {type(model).__name__} gives {shape}.")

    @staticmethod
    def _example_weights(y, sample_weight):
        weights = ops.ones((ops.shape(y[SPAN_OUTPUTS[0]])[0],), "float32")
        if sample_weight is not None:
            weights = weights * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        return weights

    def logit_pairs(self, x, y, sample_weight, teacher_logits, student_logits):
        real = ops.cast(x["padding_mask"], "bool")  # (batch, seq)
        weights = self._example_weights(y, sample_weight)
        denominator = losses.global_count(ops.cast(ops.shape(weights)[0], "float32"))
        pairs = []
        for key in SPAN_OUTPUTS:
            teacher = ops.where(real, ops.cast(teacher_logits[key], "float32"), _PADDING_LOGIT)
            student = ops.where(real, ops.cast(student_logits[key], "float32"), _PADDING_LOGIT)
            labels = ops.reshape(y[key], (-1,))
            pairs.append(LogitPair(teacher, student, labels, weights, weights * losses.label_mask(labels),
                                   denominator))
        return pairs

    def token_weights(self, x, y, sample_weight):
        padding_mask, denominator = _token_denominator(x)
        if sample_weight is not None:
            padding_mask = padding_mask * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))[:, None]
        return padding_mask, denominator

    def metric_targets(self, x, y, sample_weight):
        weights = self._example_weights(y, sample_weight)
        return {k: ops.reshape(y[k], (-1,)) for k in SPAN_OUTPUTS}, weights, ops.ones_like(weights)
