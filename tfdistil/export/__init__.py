"""Exports: SavedModel with serving signatures for TF Serving; TFLite (tokenizer outside)."""
from tfdistil.export.saved_model import REST_EXAMPLES, export_saved_model
from tfdistil.export.tflite import QUANTIZE_MODES, TFLiteClassifier, export_tflite, tflite_op_names

__all__ = ["REST_EXAMPLES", "export_saved_model", "QUANTIZE_MODES", "TFLiteClassifier", "export_tflite",
           "tflite_op_names"]
