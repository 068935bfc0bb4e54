"""Load a tfdistil SavedModel export the way a server would: TensorFlow + tensorflow-text only.

Run by tests/test_export.py in a fresh Python process:

    python tests/export_loader.py calls.json results.json

`calls.json` is a list of {"dir", "signature", "inputs": {name: list}, "dtypes": {name: dtype}};
`results.json` gets, per call, {output name: nested list} (strings decoded as UTF-8).
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402,F401  (registers the tf-text ops the graph uses)


def _to_json(value):
    array = value.numpy()
    if array.dtype == object:
        return [_decode(x) for x in array.tolist()] if array.ndim else array.item().decode("utf-8")
    return array.tolist()


def _decode(x):
    if isinstance(x, list):
        return [_decode(y) for y in x]
    return x.decode("utf-8")


def main(calls_path, results_path):
    leaked = sorted(name for name in sys.modules if name == "tfdistil" or name.startswith("tfdistil."))
    if leaked:
        raise SystemExit(f"tfdistil was imported in the loader process: {leaked}")
    with open(calls_path, encoding="utf-8") as f:
        calls = json.load(f)
    loaded = {}
    results = []
    for call in calls:
        if call["dir"] not in loaded:
            loaded[call["dir"]] = tf.saved_model.load(call["dir"])
        function = loaded[call["dir"]].signatures[call["signature"]]
        inputs = {
            name: tf.constant(value, dtype=call["dtypes"][name]) for name, value in call["inputs"].items()
        }
        outputs = function(**inputs)
        results.append({name: _to_json(value) for name, value in outputs.items()})
    results.append({"tfdistil_imported": any(n.startswith("tfdistil") for n in sys.modules)})
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
