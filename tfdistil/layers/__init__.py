"""tfdistil's Keras layers: the parts BERT and DistilBERT are built from."""
from tfdistil.layers.attention import MultiHeadSelfAttention
from tfdistil.layers.embeddings import PositionalEmbedding
from tfdistil.layers.encoder_block import TransformerEncoderBlock, skip_padding
from tfdistil.layers.feed_forward import FeedForwardNetwork
from tfdistil.layers.layer_norm import LayerNorm, xla_layer_norm
from tfdistil.layers.pooler import Pooler
from tfdistil.layers.weight_casts import WeightCasts

__all__ = [
    "MultiHeadSelfAttention",
    "FeedForwardNetwork",
    "LayerNorm",
    "PositionalEmbedding",
    "Pooler",
    "TransformerEncoderBlock",
    "WeightCasts",
    "skip_padding",
    "xla_layer_norm",
]
