"""Extractive question answering (SQuAD): the answer is a span of the context.

Read from SQuAD v1.1/v2.0 JSON (`tfdistil.data.squad`), contexts cut into strided windows,
fine-tuned with cross-entropy on the answer's start and end positions (a window without the answer
points at [CLS]), distilled on both position distributions (`SpanPositions`), scored by the
official SQuAD v1.1 exact match and F1 (percent) after the best span over each question's windows
(`tfdistil.tasks.squad_metrics`)."""
import json
import os

import numpy as np

from tfdistil.tasks.base import (
    InputError, TaskSpec, add_speedups, run_markdown, size_and_speed, students_sentence,
)
from tfdistil.tasks.classification import MODEL_COLUMNS as CLASSIFIER_COLUMNS

MODEL_COLUMNS = [
    ("model", "model", "{}"),
    ("exact_match", "dev EM", "{:.2f}"),
    ("f1", "dev F1", "{:.2f}"),
    *CLASSIFIER_COLUMNS[2:],  # parameters, size, latencies, speed-up
]


def window_logits(model, dataset, features):
    """(start logits, end logits) of every window of `features`, one unpadded float32 array a
    window in the features' order, from `model` on `dataset` (an unshuffled `make_qa_dataset`,
    whose windows come in `qa_feature_order`)."""
    from tfdistil import evaluation
    from tfdistil.data.squad import qa_feature_order

    infer = evaluation.inference_function(model)
    starts, ends = [], []
    for x, _ in dataset:
        out = infer(x)
        lengths = np.asarray(x["padding_mask"]).sum(axis=1)
        for key, into in (("start_logits", starts), ("end_logits", ends)):
            values = np.asarray(out[key], np.float32)
            into.extend(values[i, :n] for i, n in enumerate(lengths))
    order = qa_feature_order(features)
    if len(order) != len(starts):
        raise RuntimeError(f"{len(starts)} predicted windows for {len(order)} windows")
    by_window = [None] * len(order), [None] * len(order)
    for rank, w in enumerate(order):
        by_window[0][w], by_window[1][w] = starts[rank], ends[rank]
    return by_window


def predict_answers(model, data, tokenizer, batch_size):
    """{qid: (answer, score, start_char, end_char)} of every question of `data`."""
    from tfdistil.data.squad import make_qa_dataset
    from tfdistil.tasks.squad_metrics import best_answers

    ds = make_qa_dataset(data, tokenizer, batch_size)
    features = data.features(tokenizer)
    return best_answers(data, features, *window_logits(model, ds, features))


class QuestionAnswering(TaskSpec):
    name = "qa"
    serving = "question_answering"
    hf_task = "question_answering"
    examples = "questions"
    main_metric = "f1"
    # Logged by `epoch_callbacks`: EM and F1 need the whole of each question's windows.
    finetune_monitor = ("val_f1", "max")
    distill_monitor = ("val_f1", "max")
    data_settings = ("doc_stride", "max_question_length")
    # What the CLI uses for settings not given (BERT's SQuAD window).
    setting_defaults = {"sequence_length": 384}
    teacher_settings = data_settings

    @property
    def head(self):
        from tfdistil.models import SpanQA

        return SpanQA

    def build_head(self, backbone, num_classes, name=None):
        return self.head(backbone, name=name)

    # ----- data
    def read(self, path, data_config, label_names=None):
        from tfdistil.data.squad import read_squad

        return read_squad(path, doc_stride=data_config.doc_stride, max_question_length=data_config.max_question_length)

    def describe_data(self, data):
        articles = len({e.title for e in data.examples})
        return f"SQuAD {data.version} questions from {articles} articles"

    def vocabulary_texts(self, data):
        return [e.question for e in data.examples] + list(dict.fromkeys(e.context for e in data.examples))

    def dataset(self, data, tokenizer, batch_size, **kwargs):
        from tfdistil.data.squad import make_qa_dataset

        ds = make_qa_dataset(data, tokenizer, batch_size, **kwargs)
        if not kwargs.get("shuffle"):
            # What `epoch_callbacks` scores the dev windows against.
            ds.squad_source = (data, data.features(tokenizer))
        return ds

    # ----- training
    def finetune_loss(self):
        import keras

        # Applied to each output (start and end positions) and summed.
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def distill_comparison(self):
        from tfdistil.distillation import SpanPositions

        return SpanPositions()

    def distill_metrics(self):
        return None  # no per-batch metric: EM and F1 come from `epoch_callbacks`

    def epoch_callbacks(self, dev_dataset):
        from tfdistil.tasks.metrics import DevMetrics
        from tfdistil.tasks.squad_metrics import best_answers, squad_scores

        data, features = dev_dataset.squad_source

        def predict(model, dataset):
            return None, window_logits(model, dataset, features)

        def compute(_, logits):
            answers = best_answers(data, features, *logits)
            return squad_scores({qid: a[0] for qid, a in answers.items()}, data.examples)

        return [DevMetrics(dev_dataset, compute, predict=predict)]

    def ignored_warnings(self):
        # A BERT backbone's pooler feeds no span logits: it gets no gradient, as expected.
        return (r"Gradients do not exist for variables \['pooler/",)

    # ----- scoring and reports
    def score(self, model, data, tokenizer, batch_size):
        from tfdistil.tasks.squad_metrics import squad_scores

        answers = predict_answers(model, data, tokenizer, batch_size)
        return squad_scores({qid: a[0] for qid, a in answers.items()}, data.examples)

    def model_row(self, label, model, scores, tokenizer):
        return {"model": label, "exact_match": scores["exact_match"], "f1": scores["f1"],
                "num_layers": int(model.backbone.num_layers), **size_and_speed(model, tokenizer)}

    def summary(self, rows):
        add_speedups(rows)
        if len(rows) == 1:
            return f"Dev F1 {rows[0]['f1']:.2f}, exact match {rows[0]['exact_match']:.2f}."
        return students_sentence(rows, "f1", ".2f", teacher="Dev F1: teacher")

    def markdown(self, report):
        return run_markdown("QA run", report, MODEL_COLUMNS)

    # ----- evaluate and predict
    def evaluate(self, model_name, model, data, tokenizer, batch_size, output):
        """EM and F1 of the file's questions; the predictions go next to `output` as
        `<output>_predictions.json` ({id: answer}, the official script's input)."""
        from tfdistil.tasks.squad_metrics import squad_scores

        answers = predict_answers(model, data, tokenizer, batch_size)
        predictions = {qid: a[0] for qid, a in answers.items()}
        path = os.path.splitext(output)[0] + "_predictions.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(predictions, f, ensure_ascii=False, indent=1)
        return {"questions": len(data), **squad_scores(predictions, data.examples), "main_metric": self.main_metric,
                "predictions": path}

    def parse_inputs(self, lines, run_config):
        """(question, context) of each 'question<TAB>context' line."""
        inputs = []
        for number, line in enumerate(lines, 1):
            if "\t" not in line:
                raise InputError(f"input {number} ({line[:60]!r}) has no TAB: give each as 'question<TAB>context'")
            inputs.append(tuple(line.split("\t", 1)))
        settings = {k: run_config[k] for k in self.data_settings if k in run_config}
        return {"pairs": inputs, **settings}

    def predict(self, model, tokenizer, label_names, inputs, batch_size):
        """answer<TAB>score<TAB>question of each (question, context)."""
        from tfdistil.data.squad import SquadData, SquadExample

        pairs = inputs["pairs"]
        examples = [SquadExample(str(i), "<predict>", q, c, [], is_impossible=True) for i, (q, c) in enumerate(pairs)]
        options = {k: v for k, v in inputs.items() if k != "pairs"}
        answers = predict_answers(model, SquadData(examples, "<predict>", **options), tokenizer, batch_size)
        return [f"{answers[e.qid][0]}\t{answers[e.qid][1]:.4f}\t{e.question}" for e in examples]
