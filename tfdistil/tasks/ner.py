"""Named-entity recognition (token classification) on CoNLL files, scored entity by entity.

A word's prediction is the model's prediction at its first word piece; words cut off by
truncation are predicted "O", so a truncated entity counts as missed. Scores are seqeval's
default (CoNLL `conlleval`) entity matching: precision, recall and F1 over all entities
("micro avg") and per entity type."""
import numpy as np

from tfdistil.tasks.base import TaskSpec

OVERALL = "micro avg"  # seqeval's name for the scores over all entities


def entity_types(label_names):
    """Entity types of BIO/IOBES tags ("B-PER", "I-LOC" -> PER, LOC), in first-seen order."""
    types = []
    for name in label_names:
        if name != "O" and "-" in name:
            kind = name.split("-", 1)[1]
            if kind not in types:
                types.append(kind)
    return types


def seqeval_scores(true_tags, pred_tags, types):
    """seqeval's classification report as {type or "micro avg": {precision, recall, f1, support}};
    every type in `types` is present (zeros when neither gold nor predictions have it)."""
    from seqeval.metrics import classification_report

    report = classification_report(true_tags, pred_tags, output_dict=True, zero_division=0)
    scores = {}
    for key in [*types, *(k for k in report if k not in types)]:
        row = report.get(key, {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0})
        scores[key] = {"precision": float(row["precision"]), "recall": float(row["recall"]),
                       "f1": float(row["f1-score"]), "support": int(row["support"])}
    return scores


def predict_word_tags(model, data, tokenizer, batch_size=32):
    """Predicted tag strings of every word of `data`, one list per sentence (truncated words "O").
    The dataset is unbucketed and unshuffled so that its rows are `data`'s sentences in order."""
    from tfdistil import evaluation
    from tfdistil.data import align_predictions, make_token_classification_dataset

    ds = make_token_classification_dataset(data, tokenizer, batch_size, bucket_boundaries=None,
                                           log_truncation=False)
    predictions = []
    infer = evaluation.inference_function(model)
    for x, y in ds:
        logits = np.asarray(infer(x))  # (batch, seq, classes)
        predictions.extend(align_predictions(np.argmax(logits, axis=-1), np.asarray(y)))
    if len(predictions) != len(data):
        raise RuntimeError(f"{len(predictions)} predicted rows for {len(data)} sentences")
    names = data.label_names
    tags = []
    for words, ids in zip(data.sentences, predictions):
        row = [names[int(i)] for i in ids]
        tags.append(row + ["O"] * (len(words) - len(row)))
    return tags


def evaluate_ner(model, data, tokenizer, batch_size=32):
    """Entity-level scores of `model` on `data` (see `seqeval_scores`)."""
    pred = predict_word_tags(model, data, tokenizer, batch_size)
    return seqeval_scores(data.tags, pred, entity_types(data.label_names))


class NER(TaskSpec):
    name = "ner"
    serving = "token_classification"
    hf_task = "token_classification"
    examples = "sentences"
    main_metric = "f1"
    # Keras' "accuracy" would count -100 positions, so a plain tagger early-stops on dev loss;
    # the Distiller's accuracy skips them (it masks the logits).
    finetune_monitor = ("val_loss", "min")
    data_settings = ("tag_column",)

    @property
    def head(self):
        from tfdistil.models import TokenClassifier

        return TokenClassifier

    def read(self, path, data_config, label_names=None):
        from tfdistil.data import read_conll

        return read_conll(path, label_names=label_names, tag_column=data_config.tag_column)

    def vocabulary_texts(self, data):
        return [" ".join(words) for words in data.sentences]

    def dataset(self, data, tokenizer, batch_size, **kwargs):
        from tfdistil.data import make_token_classification_dataset

        return make_token_classification_dataset(data, tokenizer, batch_size, **kwargs)

    def finetune_loss(self):
        import keras

        from tfdistil.data import IGNORE_INDEX

        # -100 marks later word pieces, [CLS]/[SEP] and padding: no loss there.
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_INDEX)

    def distill_comparison(self):
        from tfdistil.distillation import PerLabelledToken

        # Logits at labelled positions only: -100 (later word pieces, [CLS]/[SEP]) and padding out.
        return PerLabelledToken()

    def ignored_warnings(self):
        # A BERT backbone's pooler feeds no token logits: it gets no gradient, as expected.
        return (r"Gradients do not exist for variables \['pooler/",)

    def score(self, model, data, tokenizer, batch_size):
        return evaluate_ner(model, data, tokenizer, batch_size)

    def model_row(self, label, model, scores, tokenizer):
        overall = scores[OVERALL]
        types = [k for k in scores if k not in (OVERALL, "macro avg", "weighted avg")]
        return {
            "model": label,
            "parameters": int(model.count_params()),
            "num_layers": int(model.backbone.num_layers),
            "precision": overall["precision"],
            "recall": overall["recall"],
            "f1": overall["f1"],
            "per_type": {t: scores[t] for t in types},
            "seqeval": scores,
        }

    def summary(self, rows):
        if len(rows) == 1:
            row = rows[0]
            return f"Tagger dev entity F1 {row['f1']:.3f} (P {row['precision']:.3f}, R {row['recall']:.3f})."
        versus = f" vs hard labels only {rows[2]['f1']:.3f}" if len(rows) > 2 else ""
        return (f"Dev entity F1: teacher {rows[0]['f1']:.3f}; student distilled {rows[1]['f1']:.3f}{versus}; "
                f"student has {rows[1]['parameters'] / rows[0]['parameters']:.0%} of the teacher's parameters.")

    def report_extras(self, data):
        return {"entity_types": entity_types(data.label_names)}

    def markdown(self, report):
        types = report["entity_types"]
        lines = [f"# NER run `{report['name']}`", "", report.get("summary", ""), "",
                 "Entity-level scores on the dev set (seqeval, CoNLL matching): precision / recall / F1.", ""]
        head = ["model", "parameters", "overall P", "overall R", "overall F1"]
        for t in types:
            head += [f"{t} P", f"{t} R", f"{t} F1"]
        lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        for row in report["models"]:
            cells = [row["model"], f"{row['parameters']:,}",
                     f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}"]
            for t in types:
                s = row["per_type"][t]
                cells += [f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}"]
            lines.append("| " + " | ".join(cells) + " |")
        support = report["models"][0]["per_type"]
        lines += ["", "Dev entities: " + ", ".join(f"{t} {support[t]['support']}" for t in types)
                  + f". Dev sentences: {report['dev_examples']}. Precision policy: `{report['precision']}`. "
                  f"Wall time: {report['wall_time_s']:.0f} s.", ""]
        lines += [f"![{plot}]({plot})" for plot in report.get("plots", [])]
        return "\n".join(lines) + "\n"

    def evaluate(self, model_name, model, data, tokenizer, batch_size, output):
        scores = evaluate_ner(model, data, tokenizer, batch_size)
        overall = scores[OVERALL]
        return {"sentences": len(data), "precision": overall["precision"], "recall": overall["recall"],
                "f1": overall["f1"], "per_type": {t: scores[t] for t in entity_types(data.label_names)}}

    def predict(self, model, tokenizer, label_names, inputs, batch_size):
        """word/TAG for each whitespace-separated word of each text."""
        return [" ".join(f"{word}/{tag}" for word, tag in tagged)
                for tagged in self.word_tags(model, tokenizer, label_names, inputs, batch_size)]

    def word_tags(self, model, tokenizer, label_names, texts, batch_size):
        """One list of (word, tag) a text, in input order."""
        from tfdistil.data import TokenClassificationData

        sentences = [text.split() for text in texts]
        words = [s for s in sentences if s]  # a blank text has no word to tag
        tags = []
        if words:
            data = TokenClassificationData(sentences=words, tags=[["O"] * len(s) for s in words],
                                           label_names=list(label_names), path="<predict>")
            tags = predict_word_tags(model, data, tokenizer, batch_size)
        tagged = iter(tags)
        return [list(zip(s, next(tagged))) if s else [] for s in sentences]
