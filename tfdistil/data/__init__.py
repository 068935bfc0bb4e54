"""Data: file readers, the embedded sentiment dataset, and tf.data pipelines.

    from tfdistil.data import read_glue_tsv, make_classification_dataset
    train = read_glue_tsv("sst2/train.tsv")
    dev = read_glue_tsv("sst2/dev.tsv", label_names=train.label_names)
    ds = make_classification_dataset(train, tokenizer, batch_size=32, shuffle=True)
"""
from tfdistil.data.pipeline import (
    DEFAULT_BUCKET_BOUNDARIES,
    IGNORE_INDEX,
    TruncationReport,
    align_predictions,
    count_truncated,
    make_classification_dataset,
    train_and_dev_datasets,
    make_token_classification_dataset,
)
from tfdistil.data.readers import (
    DataError,
    TextClassificationData,
    TokenClassificationData,
    read_conll,
    read_glue_tsv,
    read_text_classification,
)
from tfdistil.data.sentiment import (
    SENTIMENT_LABEL_NAMES,
    SentimentExample,
    generate_sentiment_dataset,
    load_sentiment_dataset,
    write_sentiment_dataset,
)

__all__ = [
    "DataError",
    "TextClassificationData",
    "TokenClassificationData",
    "read_text_classification",
    "read_glue_tsv",
    "read_conll",
    "SENTIMENT_LABEL_NAMES",
    "SentimentExample",
    "generate_sentiment_dataset",
    "load_sentiment_dataset",
    "write_sentiment_dataset",
    "IGNORE_INDEX",
    "DEFAULT_BUCKET_BOUNDARIES",
    "TruncationReport",
    "make_classification_dataset",
    "train_and_dev_datasets",
    "make_token_classification_dataset",
    "align_predictions",
    "count_truncated",
]
