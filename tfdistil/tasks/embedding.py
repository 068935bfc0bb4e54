"""Sentence embeddings (a `TextEmbedder`), scored zero-shot on sentence pairs with a similarity
score (GLUE STS-B): Spearman and Pearson correlation (scipy) of the cosine similarity of the two
sentences' embeddings with the gold score, Spearman the main metric (as sentence-transformers
reports STS).

Embedders are not trained or distilled by tfdistil yet: a run folder comes from a pretrained
sentence-transformers checkpoint, without training:

    python -m tfdistil.tasks.embedding --hf PATH --run runs/minilm   # or write_embedder_run(PATH, RUN)
    tfdistil evaluate --run runs/minilm --data glue/STS-B/dev.tsv
"""
import json
import os

import numpy as np

from tfdistil.tasks.base import InputError, TaskSpec

MODEL_COLUMNS = [
    ("model", "model", "{}"),
    ("spearman", "dev Spearman (cosine)", "{:.4f}"),
    ("pearson", "dev Pearson (cosine)", "{:.4f}"),
    ("parameters", "parameters", "{:,}"),
]
NO_TRAINING = ("task 'embedding' has no training or distillation yet: make an embedder run from a "
               "sentence-transformers checkpoint with `python -m tfdistil.tasks.embedding --hf PATH --run RUN` "
               "and score it with `tfdistil evaluate`")


def _no_training():
    from tfdistil.jobs.runs import RunError

    return RunError(NO_TRAINING)


def embed(model, tokenizer, texts, batch_size=32):
    """(len(texts), hidden) float32 embeddings of `texts`, in order."""
    import tensorflow as tf

    from tfdistil import evaluation

    infer = evaluation.inference_function(model)
    batches = [np.asarray(infer(tokenizer(tf.constant(texts[i: i + batch_size], tf.string))))
               for i in range(0, len(texts), batch_size)]
    return np.concatenate(batches) if batches else np.zeros((0, model.backbone.hidden_dim), np.float32)


def cosine_similarities(first, second):
    """Row-wise cosine similarity of two (n, hidden) arrays (float64)."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    return np.sum(first * second, axis=1) / np.maximum(norms, 1e-12)


class Embedding(TaskSpec):
    name = "embedding"
    serving = "text_embedding"
    hf_task = "text_embedding"  # `tfdistil.convert.load_hf` task
    examples = "sentence pairs"
    main_metric = "spearman"
    finetune_monitor = ("val_spearman", "max")
    distill_monitor = ("val_spearman", "max")
    trainable = False  # no fine-tuning or distillation yet (`NO_TRAINING`)
    data_settings = ("text_column", "text_pair_column", "label_column")

    @property
    def head(self):
        from tfdistil.models import TextEmbedder

        return TextEmbedder

    def build_head(self, backbone, num_classes=None, name=None):
        return self.head(backbone, name=name)

    # ----- data
    def read(self, path, data_config, label_names=None):
        """Sentence pairs with a float similarity score (the classification reader's regression
        layouts); a file of single sentences is a DataError."""
        from tfdistil.data import read_text_classification
        from tfdistil.data.readers import DataError

        data = read_text_classification(
            path, text_column=data_config.text_column, label_column=data_config.label_column,
            text_pair_column=data_config.text_pair_column, label_names=None, regression=True,
        )
        if data.text_pairs is None:
            raise DataError(f"{path}: the embedding task scores sentence pairs with a similarity score "
                            "(e.g. GLUE STS-B); found single sentences (give --text-pair-column)")
        return data

    def describe_data(self, data):
        return f"scores from {float(np.min(data.labels)):g} to {float(np.max(data.labels)):g}"

    def recorded_settings(self, data):
        # Asked only by the training jobs (finetune, distill), before they write anything: the
        # place to refuse them early and cleanly.
        raise _no_training()

    def vocabulary_texts(self, data):
        return data.texts + data.text_pairs

    # ----- training: not yet
    def dataset(self, data, tokenizer, batch_size, **kwargs):
        raise _no_training()

    def finetune_loss(self):
        raise _no_training()

    def distill_comparison(self):
        raise _no_training()

    # ----- scoring and reports
    def similarities(self, model, data, tokenizer, batch_size):
        """Cosine similarity of each pair's embeddings, in file order."""
        return cosine_similarities(embed(model, tokenizer, list(data.texts), batch_size),
                                   embed(model, tokenizer, list(data.text_pairs), batch_size))

    def score(self, model, data, tokenizer, batch_size):
        """{"spearman", "pearson"} of the cosine similarities against the gold scores (zero-shot)."""
        from tfdistil.tasks.metrics import regression_scores

        scores = regression_scores(data.labels, self.similarities(model, data, tokenizer, batch_size))
        return {"spearman": scores["spearman"], "pearson": scores["pearson"]}

    def model_row(self, label, model, scores, tokenizer):
        return {"model": label, **scores, "parameters": int(model.count_params())}

    def summary(self, rows):
        return "; ".join(f"{row['model']}: dev Spearman {row['spearman']:.4f}, Pearson {row['pearson']:.4f} "
                         "(cosine, zero-shot)" for row in rows) + "."

    def markdown(self, report):
        from tfdistil.report import markdown_table

        return "\n".join([f"# Embedding run `{report['name']}`", "", report.get("summary", ""), "",
                          markdown_table(report["models"], MODEL_COLUMNS), ""]) + "\n"

    # ----- evaluate and predict
    def evaluate(self, model_name, model, data, tokenizer, batch_size, output):
        return {"examples": len(data), "similarity": "cosine", **self.score(model, data, tokenizer, batch_size),
                "main_metric": self.main_metric}

    def parse_inputs(self, lines, run_config):
        """Pairs 'first<TAB>second' (their cosine similarity is printed)."""
        for number, text in enumerate(lines, 1):
            if "\t" not in text:
                raise InputError(f"input {number} ({text[:60]!r}) has no TAB: an embedder run compares two "
                                 "sentences; give each pair as 'first<TAB>second'")
        return [tuple(text.split("\t", 1)) for text in lines]

    def predict(self, model, tokenizer, label_names, inputs, batch_size):
        """cosine<TAB>first<TAB>second of each pair."""
        similarities = cosine_similarities(embed(model, tokenizer, [a for a, _ in inputs], batch_size),
                                           embed(model, tokenizer, [b for _, b in inputs], batch_size))
        return [f"{s:.4f}\t{a}\t{b}" for s, (a, b) in zip(similarities, inputs)]


def write_embedder_run(hf, run_dir, sequence_length=None):
    """Write a run folder (config.json with task "embedding", models/model.keras, vocab.txt,
    tokenizer.json, label_names.json) holding the `TextEmbedder` of the sentence-transformers (or
    plain BERT/DistilBERT) folder `hf`, untrained: what `tfdistil evaluate`, `predict` and
    `export` read. `sequence_length` overrides the checkpoint's. Returns `run_dir`."""
    from tfdistil.convert import load_hf
    from tfdistil.jobs.runs import save_run_label_names, save_run_tokenizer, write_json

    overrides = {} if sequence_length is None else {"sequence_length": int(sequence_length)}
    model, tokenizer = load_hf(hf, task="text_embedding", tokenizer_kwargs=overrides)
    if tokenizer is None:
        raise ValueError(f"{hf!r} has no vocabulary (vocab.txt or tokenizer.json): an embedder run needs one")
    os.makedirs(os.path.join(run_dir, "models"), exist_ok=True)
    model.save(os.path.join(run_dir, "models", "model.keras"))
    save_run_tokenizer(tokenizer, run_dir)
    save_run_label_names(None, run_dir)
    write_json(os.path.join(run_dir, "config.json"),
               {"task": "embedding", "hf": str(hf), "sequence_length": int(tokenizer.sequence_length)})
    return run_dir


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tfdistil.tasks.embedding",
                                     description="Write an embedder run folder from a sentence-transformers "
                                                 "checkpoint (no training).")
    parser.add_argument("--hf", required=True, help="local sentence-transformers / Hugging Face folder")
    parser.add_argument("--run", required=True, help="run folder to write")
    parser.add_argument("--sequence-length", type=int, default=None)
    args = parser.parse_args(argv)
    print(json.dumps({"run": write_embedder_run(args.hf, args.run, args.sequence_length)}))


if __name__ == "__main__":
    main()
