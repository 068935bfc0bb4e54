"""A shared test harness: a test file gives tiny constructor kwargs, inputs and the
shapes it expects; the harness runs the checks every layer and model must pass.

- `run_layer_test`: eager and `tf.function` calls, shapes and dtypes, `get_config` ==
  constructor arguments, `from_config`/`serialize_keras_object` round trips, `.keras`
  save/load of a functional model wrapping the layer, weight counts, gradients, and
  mixed-precision (float16 / bfloat16) behaviour against the float32 layer.
- `run_backbone_test`, `run_task_test`: the same for backbones and task models, plus
  `intermediate_model()` consistency.
- `run_model_saving_test`: `.keras`, `model.export` and `tf.saved_model.save` round trips.

Conventions: inputs are numpy arrays; a dict `input_data` is passed as keyword arguments
to a layer (`layer(**input_data)`) and as the single dict argument to a model.
"""
import inspect
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

# Keys `keras.layers.Layer.get_config` / `keras.Model` add on their own.
BASE_LAYER_CONFIG_KEYS = frozenset({"name", "trainable", "dtype", "autocast", "activity_regularizer"})
BASE_MODEL_CONFIG_KEYS = frozenset({"name", "trainable", "dtype"})

PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")
# Max |reduced - float32| relative to max |float32|. float16 keeps 10 mantissa bits,
# bfloat16 only 7; the tiny layers measure ~8e-4 and ~7e-3 (layers), ~1e-3 and ~7e-3
# (2-layer backbones).
DEFAULT_PRECISION_RTOL = {"mixed_float16": 2e-3, "mixed_bfloat16": 1.5e-2}
MODEL_PRECISION_RTOL = {"mixed_float16": 5e-3, "mixed_bfloat16": 2.5e-2}


# ---------------------------------------------------------------- small utilities


def to_numpy(structure):
    """Every tensor in a nested structure as a numpy array (dtype kept); tuples become
    lists (a reloaded functional model returns a list where the original gave a tuple)."""
    if isinstance(structure, dict):
        return {k: to_numpy(v) for k, v in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [to_numpy(v) for v in structure]
    return np.asarray(keras.ops.convert_to_numpy(structure))


def _is_shape(value):
    return isinstance(value, (tuple, list)) and all(v is None or isinstance(v, int) for v in value)


def assert_shapes(outputs, expected, what="output"):
    """`expected` is a shape tuple, or a tuple/list/dict of them matching `outputs`."""
    if _is_shape(expected):
        actual = tuple(outputs.shape)
        assert len(actual) == len(expected) and all(
            e is None or a == e for a, e in zip(actual, expected)
        ), f"{what} shape {actual} != expected {tuple(expected)}"
        return
    if isinstance(expected, dict):
        assert isinstance(outputs, dict), f"{what}: expected a dict, got {type(outputs).__name__}"
        assert set(outputs) == set(expected), f"{what} keys {sorted(outputs)} != {sorted(expected)}"
        for key in expected:
            assert_shapes(outputs[key], expected[key], f"{what}[{key!r}]")
        return
    assert isinstance(outputs, (tuple, list)) and len(outputs) == len(expected), (
        f"{what}: expected {len(expected)} outputs, got {outputs!r}"
    )
    for i, (out, exp) in enumerate(zip(outputs, expected)):
        assert_shapes(out, exp, f"{what}[{i}]")


def _dtype_name(t):
    return keras.backend.standardize_dtype(t.dtype)


def assert_dtypes(outputs, expected, what="output"):
    """`expected`: one dtype name for every output, or a structure of names like `outputs`."""
    if isinstance(expected, str):
        for i, t in enumerate(keras.tree.flatten(outputs)):
            assert _dtype_name(t) == expected, f"{what}[{i}] dtype {_dtype_name(t)} != {expected}"
        return
    keras.tree.assert_same_structure(outputs, expected)
    for i, (t, e) in enumerate(zip(keras.tree.flatten(outputs), keras.tree.flatten(expected))):
        assert _dtype_name(t) == e, f"{what}[{i}] dtype {_dtype_name(t)} != {e}"


def assert_identical(actual, expected, what="outputs", atol=0.0):
    """Same structure, same values (bitwise unless `atol` is given)."""
    actual, expected = to_numpy(actual), to_numpy(expected)
    keras.tree.assert_same_structure(actual, expected)
    for i, (a, e) in enumerate(zip(keras.tree.flatten(actual), keras.tree.flatten(expected))):
        assert a.shape == e.shape, f"{what}[{i}]: shape {a.shape} != {e.shape}"
        if atol == 0.0:
            np.testing.assert_array_equal(a, e, err_msg=f"{what}[{i}] differ")
        else:
            np.testing.assert_allclose(
                a.astype("float64"), e.astype("float64"), rtol=0, atol=atol, err_msg=f"{what}[{i}] differ"
            )


def graph_def_nodes(graph_def):
    """Every node of a GraphDef: its own and those of the functions in its library (the
    bodies of tf.function calls, `cond` branches)."""
    return list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]


def graph_def_uses_xla(graph_def):
    """Whether a GraphDef (its nodes or any function of its library) holds an XLA-compiled
    function: a `_XlaMustCompile` attribute set on a function or a call node."""
    return (any(n.attr["_XlaMustCompile"].b for n in graph_def_nodes(graph_def))
            or any(f.attr["_XlaMustCompile"].b for f in graph_def.library.function))


def np_cosine(a, b, pad):
    """cos(a, b) over the last axis at real tokens (`pad` > 0), 1 at padding: blocks that skip
    padding output zero vectors there, whose cosine is undefined (and masked out anyway)."""
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.divide((a * b).sum(-1), norms, out=np.ones_like(norms), where=pad > 0)


def relative_error(actual, reference):
    """max |actual - reference| / max |reference| (float64)."""
    a = np.asarray(actual, dtype="float64")
    r = np.asarray(reference, dtype="float64")
    return float(np.max(np.abs(a - r)) / max(np.max(np.abs(r)), 1e-12))


def init_arg_names(cls):
    """Named constructor parameters (no self, *args, **kwargs)."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name for p in params
        if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def assert_config_is_constructor_args(obj, init_kwargs, base_keys):
    """`get_config()` holds exactly the constructor's arguments (plus the base class's
    bookkeeping keys), is JSON-serialisable, and echoes the values it was given."""
    cls = type(obj)
    config = obj.get_config()
    init_args = init_arg_names(cls) - base_keys
    config_args = set(config) - base_keys
    assert config_args == init_args, (
        f"{cls.__name__}.get_config() keys beyond the base ones {sorted(config_args)} != "
        f"__init__ arguments {sorted(init_args)}; missing: {sorted(init_args - config_args)}, "
        f"extra: {sorted(config_args - init_args)}"
    )
    json.dumps(keras.saving.serialize_keras_object(obj))  # must be JSON-able for `.keras`
    for key, value in init_kwargs.items():
        if key in base_keys or key not in config:
            continue
        if key.endswith("initializer"):
            assert type(keras.initializers.get(config[key])) is type(keras.initializers.get(value)), (
                f"config[{key!r}] = {config[key]!r} is not the given {value!r}"
            )
        elif isinstance(value, (bool, int, float, str, type(None))):
            assert config[key] == value, f"config[{key!r}] = {config[key]!r} != given {value!r}"
    return config


def assert_registered(obj, package="tfdistil"):
    name = keras.saving.get_registered_name(type(obj))
    assert name == f"{package}>{type(obj).__name__}", (
        f"{type(obj).__name__} is registered as {name!r}, not under package {package!r}"
    )


def shared_initial_values(obj):
    """Pairs of weight matrices (ndim >= 2) of `obj` whose values coincide: equal, or one
    the flattened prefix of the other (an unseeded Keras 3 initializer reused for
    several weights draws the same stream each time, so a (24, 16) table comes out as
    the first 24 rows of a (60, 16) one). Freshly built, randomly initialised weights
    should give an empty list."""
    matrices = [(w.path, np.asarray(w).ravel()) for w in obj.weights if len(w.shape) >= 2]
    pairs = []
    for i, (name_a, a) in enumerate(matrices):
        for name_b, b in matrices[i + 1 :]:
            n = min(a.size, b.size)
            if np.array_equal(a[:n], b[:n]):
                pairs.append(f"{name_a} ~ {name_b}")
    return pairs


def _call_layer(layer, input_data, call_kwargs, **extra):
    if isinstance(input_data, dict):
        return layer(**input_data, **call_kwargs, **extra)
    return layer(input_data, **call_kwargs, **extra)


def _symbolic_inputs(input_data):
    def make(name, array):
        array = np.asarray(array)
        return keras.Input(shape=array.shape[1:], dtype=str(array.dtype), name=name)

    if isinstance(input_data, dict):
        return {k: make(k, v) for k, v in input_data.items()}
    return make("inputs", input_data)


def _weights_to_numpy(obj):
    return [np.asarray(w) for w in obj.get_weights()]


def _float_variables(obj):
    return [v for v in obj.weights if keras.backend.is_float_dtype(v.dtype)]


# ---------------------------------------------------------------- layers


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    *,
    call_kwargs=None,
    expected_output_dtype=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=0,
    run_gradient_test=True,
    run_saving_test=True,
    run_precision_test=True,
    precision_policies=PRECISION_POLICIES,
    precision_rtol=None,
):
    """Runs the checks every tfdistil layer must pass; returns the float32 layer.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor kwargs (tiny sizes), without `dtype`.
        input_data: a numpy array (the first call argument) or a dict of numpy arrays
            passed as keyword call arguments (e.g. `inputs`, `padding_mask`).
        expected_output_shape: a shape tuple, or a tuple of them for several outputs.
        call_kwargs: non-tensor call arguments (e.g. `return_attention_scores=True`).
        expected_output_dtype: None (every output in the layer's compute dtype), or a
            structure like the outputs holding a dtype name, or None for "compute dtype"
            (e.g. `(None, "float32")` for attention output + float32 probabilities).
        expected_num_trainable_weights / expected_num_non_trainable_weights: counts.
        precision_rtol: {policy: rtol} overriding `DEFAULT_PRECISION_RTOL`.
    """
    call_kwargs = dict(call_kwargs or {})
    keras.utils.set_random_seed(1337)

    # 1. Eager call: shapes, dtypes, weights.
    layer = layer_cls(**init_kwargs)
    outputs = _call_layer(layer, input_data, call_kwargs)
    assert layer.built, f"{layer_cls.__name__} is not built after its first call"
    assert_shapes(outputs, expected_output_shape)
    assert_dtypes(outputs, _expected_dtypes(outputs, expected_output_dtype, layer.compute_dtype))
    for t in keras.tree.flatten(outputs):
        assert np.all(np.isfinite(np.asarray(t, dtype="float64"))), "non-finite float32 output"
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, (
            f"{len(layer.trainable_weights)} trainable weights "
            f"({[w.path for w in layer.trainable_weights]}), expected {expected_num_trainable_weights}"
        )
    assert len(layer.non_trainable_weights) == expected_num_non_trainable_weights, (
        f"non-trainable weights {[w.path for w in layer.non_trainable_weights]}, "
        f"expected {expected_num_non_trainable_weights}"
    )

    # 2. Inside a tf.function (graph mode) the layer gives the same result.
    graph_fn = tf.function(lambda data: _call_layer(layer, data, call_kwargs))
    assert_identical(graph_fn(input_data), outputs, "tf.function outputs vs eager", atol=1e-6)

    # 3. Gradients reach every trainable weight.
    if run_gradient_test and layer.trainable_weights:
        with tf.GradientTape() as tape:
            out = _call_layer(layer, input_data, call_kwargs)
            loss = sum(tf.reduce_sum(tf.cast(t, "float32") ** 2) for t in keras.tree.flatten(out))
        grads = tape.gradient(loss, layer.trainable_weights)
        for w, g in zip(layer.trainable_weights, grads):
            assert g is not None, f"no gradient reaches {w.path}"
            assert np.all(np.isfinite(np.asarray(g))), f"non-finite gradient for {w.path}"

    # 4. get_config is the constructor's arguments; from_config rebuilds the same layer.
    config = assert_config_is_constructor_args(layer, init_kwargs, BASE_LAYER_CONFIG_KEYS)
    revived = layer_cls.from_config(config)
    _call_layer(revived, input_data, call_kwargs)  # build
    revived.set_weights(layer.get_weights())
    assert_identical(_call_layer(revived, input_data, call_kwargs), outputs, "from_config outputs")

    # 5. Keras serialization under the `tfdistil` package.
    assert_registered(layer)
    serialized = keras.saving.serialize_keras_object(layer)
    deserialized = keras.saving.deserialize_keras_object(serialized)
    assert type(deserialized) is layer_cls
    _call_layer(deserialized, input_data, call_kwargs)
    deserialized.set_weights(layer.get_weights())
    assert_identical(_call_layer(deserialized, input_data, call_kwargs), outputs, "deserialized outputs")

    # 6. `.keras` save/load of a functional model wrapping the layer (safe_mode=True).
    if run_saving_test:
        symbolic = _symbolic_inputs(input_data)
        symbolic_out = _call_layer(layer, symbolic, call_kwargs)
        assert_shapes(symbolic_out, _symbolic_expected(expected_output_shape), "symbolic output")
        model = keras.Model(symbolic, symbolic_out)
        _assert_keras_round_trip(model, input_data, outputs)

    # 7. Mixed precision: float32 variables, compute-dtype outputs close to float32.
    if run_precision_test:
        rtol = dict(DEFAULT_PRECISION_RTOL, **(precision_rtol or {}))
        for policy in precision_policies:
            mixed = layer_cls(**init_kwargs, dtype=policy)
            _call_layer(mixed, input_data, call_kwargs)  # build
            for v in mixed.weights:
                if keras.backend.is_float_dtype(v.dtype):
                    assert v.dtype == "float32", f"{policy}: variable {v.path} is {v.dtype}, not float32"
            mixed.set_weights(layer.get_weights())
            mixed_out = _call_layer(mixed, input_data, call_kwargs)
            assert_dtypes(
                mixed_out,
                _expected_dtypes(mixed_out, expected_output_dtype, mixed.compute_dtype),
                f"{policy} output",
            )
            pairs = zip(keras.tree.flatten(to_numpy(mixed_out)), keras.tree.flatten(to_numpy(outputs)))
            for i, (m, r) in enumerate(pairs):
                m = m.astype("float64")
                assert np.all(np.isfinite(m)), f"{policy}: output {i} is not finite"
                err = relative_error(m, r)
                assert err <= rtol[policy], (
                    f"{policy}: output {i} differs from float32 by {err:.2e} (relative), > {rtol[policy]:.0e}"
                )
    return layer


def _expected_dtypes(outputs, expected, compute_dtype):
    if expected is None:
        return keras.tree.map_structure(lambda _: compute_dtype, outputs)
    if isinstance(expected, str):
        return keras.tree.map_structure(lambda _: expected, outputs)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    return keras.tree.pack_sequence_as(outputs, [compute_dtype if e is None else e for e in expected])


def _symbolic_expected(expected):
    """Symbolic outputs have a None batch size; the first dim of a shape is not checked
    (PositionalEmbedding's output has batch dimension 1)."""
    if _is_shape(expected):
        return (None,) + tuple(expected[1:])
    if isinstance(expected, dict):
        return {k: _symbolic_expected(v) for k, v in expected.items()}
    return type(expected)(_symbolic_expected(e) for e in expected)


def _assert_keras_round_trip(model, input_data, expected_outputs=None):
    reference = model(input_data) if expected_outputs is None else expected_outputs
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
    assert type(loaded) is type(model), f"reloaded {type(loaded).__name__}, saved {type(model).__name__}"
    assert_identical(loaded(input_data), reference, ".keras reloaded outputs")
    return loaded


# ---------------------------------------------------------------- models


def run_model_saving_test(model, input_data, run_export=True, atol=1e-6):
    """`.keras` round trip (identical outputs), then `model.export` and a
    `tf.saved_model.save` with an explicit serving signature (outputs within `atol`)."""
    reference = to_numpy(model(input_data, training=False))
    loaded = _assert_keras_round_trip(model, input_data, reference)
    if not run_export:
        return loaded
    names = list(input_data)
    tensors = {k: tf.constant(v) for k, v in input_data.items()}
    with tempfile.TemporaryDirectory() as tmp:
        export_dir = os.path.join(tmp, "export")
        model.export(export_dir, format="tf_saved_model", verbose=False)
        # Keep the loaded object referenced: its functions do not own its variables.
        exported = tf.saved_model.load(export_dir)
        served = exported.serve(tensors)
        assert_identical(served, reference, "model.export outputs", atol=atol)

        specs = [tf.TensorSpec((None, None), tf.as_dtype(np.asarray(input_data[n]).dtype), name=n) for n in names]

        @tf.function(input_signature=specs)
        def serve(*args):
            return model(dict(zip(names, args)), training=False)

        saved_dir = os.path.join(tmp, "saved_model")
        tf.saved_model.save(model, saved_dir, signatures=serve.get_concrete_function())
        restored = tf.saved_model.load(saved_dir)
        signature = restored.signatures["serving_default"]
        served = signature(**tensors)
        # A signature always returns a flat dict; a single-tensor model's key is `output_0`.
        if not isinstance(reference, dict):
            assert len(served) == 1, f"expected one signature output, got {sorted(served)}"
            served = next(iter(served.values()))
        assert_identical(served, reference, "tf.saved_model outputs", atol=atol)
    return loaded


def _clone_with_dtype(model, dtype):
    config = dict(model.get_config(), dtype=dtype)
    return type(model).from_config(config)


def run_backbone_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shapes,
    *,
    run_saving_test=True,
    run_export=True,
    run_precision_test=True,
    precision_policies=PRECISION_POLICIES,
):
    """Checks a backbone class; returns the float32 backbone.

    `expected_output_shapes`: {"sequence_output": (b, s, h), ...}.
    """
    keras.utils.set_random_seed(1337)
    backbone = cls(**init_kwargs)
    outputs = backbone(input_data)
    assert_shapes(outputs, expected_output_shapes, f"{cls.__name__} outputs")
    assert_dtypes(outputs, "float32")

    graph_fn = tf.function(lambda data: backbone(data))
    assert_identical(graph_fn(input_data), outputs, "tf.function outputs vs eager", atol=1e-6)

    # intermediate_model: same weights, same sequence_output, every hidden state and map.
    batch, seq = np.asarray(input_data["token_ids"]).shape
    num_layers = backbone.num_layers
    full = backbone.intermediate_model()(input_data)
    assert_identical(full["sequence_output"], outputs["sequence_output"], "intermediate sequence_output", atol=1e-6)
    assert len(full["hidden_states"]) == num_layers + 1
    assert len(full["attention_scores"]) == num_layers
    for h in full["hidden_states"]:
        assert_shapes(h, (batch, seq, backbone.hidden_dim), "hidden state")
    for a in full["attention_scores"]:
        assert_shapes(a, (batch, backbone.num_heads, seq, seq), "attention scores")
        assert_dtypes(a, "float32", "attention scores")
    assert_identical(full["hidden_states"][-1], outputs["sequence_output"], "last hidden state", atol=1e-6)
    assert {id(w) for w in backbone.intermediate_model().weights} == {id(w) for w in backbone.weights}, (
        "intermediate_model() does not share exactly the backbone's weights"
    )

    config = assert_config_is_constructor_args(backbone, init_kwargs, BASE_MODEL_CONFIG_KEYS)
    revived = cls.from_config(config)
    revived.set_weights(backbone.get_weights())
    assert_identical(revived(input_data), outputs, "from_config outputs")
    assert_registered(backbone)
    deserialized = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(backbone))
    assert type(deserialized) is cls
    deserialized.set_weights(backbone.get_weights())
    assert_identical(deserialized(input_data), outputs, "deserialized outputs")

    deferred = []  # failures reported after the remaining checks have run
    if run_precision_test:
        for policy in precision_policies:
            mixed = _clone_with_dtype(backbone, policy)
            recorded = keras.saving.deserialize_keras_object(mixed.get_config()["dtype"])
            if recorded.name != policy:
                deferred.append(
                    f"{cls.__name__}(dtype={policy!r}).get_config() records dtype {recorded.name!r} "
                    f"(model.dtype_policy={mixed.dtype_policy.name!r}): from_config/.keras reloads "
                    "lose the policy"
                )
            for v in _float_variables(mixed):
                assert v.dtype == "float32", f"{policy}: variable {v.path} is {v.dtype}"
            mixed.set_weights(backbone.get_weights())
            mixed_out = mixed(input_data)
            compute = keras.mixed_precision.DTypePolicy(policy).compute_dtype
            assert_dtypes(mixed_out, compute, f"{policy} outputs")
            for key in outputs:
                m = np.asarray(mixed_out[key], dtype="float64")
                assert np.all(np.isfinite(m)), f"{policy}: {key} not finite"
                err = relative_error(m, outputs[key])
                tol = MODEL_PRECISION_RTOL[policy]
                assert err <= tol, f"{policy}: {key} differs from float32 by {err:.2e} (relative) > {tol}"
            mixed_full = mixed.intermediate_model()(input_data)
            for a in mixed_full["attention_scores"]:
                assert_dtypes(a, "float32", f"{policy} attention scores")

    if run_saving_test:
        run_model_saving_test(backbone, input_data, run_export=run_export)
    assert not deferred, "; ".join(deferred)
    return backbone


def run_task_test(
    cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    *,
    run_saving_test=True,
    run_export=True,
    run_precision_test=True,
    precision_policies=("mixed_bfloat16",),
):
    """Checks a task model class; returns the float32 task model.

    `init_kwargs` holds a float32 `backbone`; `expected_output_shape` is a shape or a
    dict of shapes (SpanQA). Logits must be float32 whatever the policy.
    """
    keras.utils.set_random_seed(1337)
    model = cls(**init_kwargs)
    outputs = model(input_data)
    assert_shapes(outputs, expected_output_shape, f"{cls.__name__} outputs")
    assert_dtypes(outputs, "float32", "logits")

    graph_fn = tf.function(lambda data: model(data))
    assert_identical(graph_fn(input_data), outputs, "tf.function outputs vs eager", atol=1e-6)

    # intermediate_model()["logits"] is this model's output, from the same weights.
    full = model.intermediate_model()(input_data)
    assert_identical(full["logits"], outputs, "intermediate_model logits", atol=1e-6)
    num_layers = model.backbone.num_layers
    assert len(full["hidden_states"]) == num_layers + 1
    assert len(full["attention_scores"]) == num_layers

    kwargs_without_backbone = {k: v for k, v in init_kwargs.items() if k != "backbone"}
    config = assert_config_is_constructor_args(model, kwargs_without_backbone, BASE_MODEL_CONFIG_KEYS)
    revived = cls.from_config(config)
    assert type(revived.backbone) is type(model.backbone)
    revived.set_weights(model.get_weights())
    assert_identical(revived(input_data), outputs, "from_config outputs")
    assert_registered(model)

    if run_precision_test:
        for policy in precision_policies:
            backbone = _clone_with_dtype(model.backbone, policy)
            mixed = cls(**dict(init_kwargs, backbone=backbone))
            for v in _float_variables(mixed):
                assert v.dtype == "float32", f"{policy}: variable {v.path} is {v.dtype}"
            mixed.set_weights(model.get_weights())
            mixed_out = mixed(input_data)
            assert_dtypes(mixed_out, "float32", f"{policy} logits")
            for m, r in zip(keras.tree.flatten(to_numpy(mixed_out)), keras.tree.flatten(to_numpy(outputs))):
                assert np.all(np.isfinite(m)), f"{policy}: non-finite logits"
                err = relative_error(m, r)
                assert err <= MODEL_PRECISION_RTOL[policy], (
                    f"{policy}: logits differ from float32 by {err:.2e} (relative)"
                )
            assert_dtypes(mixed.intermediate_model()(input_data)["logits"], "float32", f"{policy} intermediate logits")

    if run_saving_test:
        run_model_saving_test(model, input_data, run_export=run_export)
    return model
