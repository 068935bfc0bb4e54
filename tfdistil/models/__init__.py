"""BERT and DistilBERT backbones, task models and presets."""
from tfdistil.models.backbone import Backbone, BertBackbone, DistilBertBackbone
from tfdistil.models.presets import PRESETS
from tfdistil.models.tasks import (
    MaskedLM,
    SpanQA,
    Task,
    TextClassifier,
    TextEmbedder,
    TextRegressor,
    TokenClassifier,
)
