"""Exports: SavedModel with serving signatures for TF Serving."""
from tfdistil.export.saved_model import REST_EXAMPLES, export_saved_model

__all__ = ["REST_EXAMPLES", "export_saved_model"]
