"""Text: in-graph WordPiece tokenization (tensorflow-text) and WordPiece vocabularies."""
from tfdistil.text.vocab import learn_vocabulary, load_vocabulary, save_vocabulary
from tfdistil.text.wordpiece import WordPieceTokenizer

__all__ = ["WordPieceTokenizer", "learn_vocabulary", "load_vocabulary", "save_vocabulary"]
