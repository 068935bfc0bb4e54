"""TF Serving warm-up records: `assets.extra/tf_serving_warmup_requests`.

TF Serving replays these requests when it loads a version, so the first real request does not
pay for tracing and memory allocation. The file is a TFRecord of `PredictionLog` protos,
written with tensorflow-serving-api's own classes.
"""
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

WARMUP_FILE = "tf_serving_warmup_requests"
# The batch written as the warm-up request (empty and non-ASCII text included).
WARMUP_TEXTS = ("a good film", "", "café naïve 東京")


def prediction_log(inputs, signature_name="serving_default"):
    """Serialized `tensorflow.serving.PredictionLog` holding one PredictRequest.

    Args:
        inputs: {input name: list of Python strings} (a batch).
        signature_name: the signature the request calls.
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = signature_name
    for name, values in inputs.items():
        request.inputs[name].CopyFrom(
            tf.make_tensor_proto(np.array([v.encode("utf-8") for v in values], dtype=object), dtype=tf.string)
        )
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    return log.SerializeToString()


def write_warmup(folder, inputs):
    """Write `folder/assets.extra/tf_serving_warmup_requests` with one request of `inputs`."""
    extra = folder / "assets.extra"
    extra.mkdir()
    with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
        writer.write(prediction_log(inputs))
