"""Start-up: no import cycle among tfdistil's modules, every module imports, the CLI's help and
argument errors need no TensorFlow, and TensorFlow imported after `quiet_tensorflow()` prints
no log line (while other output, a fatal abort's message included, still gets through)."""
import ast
import os
import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfdistil._env import filter_log_lines

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO_ROOT / "tfdistil"
# What TensorFlow, absl and CUDA print: absl/glog records (`I0000 00:00:1796410182.042520  5353
# port.cc:153] ...`), absl's pre-initialisation banner, and the known messages by their words.
TF_LOG_LINE = re.compile(r"^[IWEF]\d{4} |absl::InitializeLog|cuInit|oneDNN|cpu_feature_guard|cudart_stub"
                         r"|TF_ENABLE_ONEDNN_OPTS|rebuild TensorFlow with the appropriate compiler flags",
                         re.MULTILINE)


# ----------------------------------------------------------------------------- import graph


def package_modules(directory=PACKAGE_DIR, prefix="tfdistil"):
    """{module name: source path} of the package and all its sub-modules, found with pkgutil
    without importing any of them."""
    modules = {prefix: directory / "__init__.py"}
    for info in pkgutil.iter_modules([str(directory)]):
        name = f"{prefix}.{info.name}"
        if info.ispkg:
            modules.update(package_modules(directory / info.name, name))
        else:
            modules[name] = directory / f"{info.name}.py"
    return modules


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(tree):
    """(import statement, deferred) for every import in the module, deferred when it sits in a
    function body (it runs later, at a call). `if TYPE_CHECKING:` blocks never run: left out."""
    found = []

    def visit(node, deferred):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append((child, deferred))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for statement in child.orelse:
                    visit(ast.Module(body=[statement], type_ignores=[]), deferred)
            else:
                visit(child, deferred or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def import_graph(modules):
    """{module: {imported tfdistil module: deferred}}, deferred when every import of it sits in a
    function. `from p import x` counts as an import of `p.x` when that is a module, else of `p`.
    A deferred import keeps a cycle from failing at import time, but the two modules still
    depend on each other, so it counts."""
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = {}
        for node, deferred in imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    anchor = ".".join(parts[: len(parts) - node.level + 1])
                    base = f"{anchor}.{base}" if base else anchor
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    edges[target] = edges.get(target, True) and deferred
        graph[name] = edges
    return graph


def find_cycles(graph):
    """One cycle (a list of modules, first == last) per strongly connected component that has one
    (Tarjan's algorithm, then a walk inside the component until a module repeats)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                connect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles = []
    for component in components:
        path = [min(component)]
        while True:
            succ = min(s for s in graph[path[-1]] if s in component)
            if succ in path:
                cycles.append(path[path.index(succ):] + [succ])
                break
            path.append(succ)
    return cycles


def describe(cycle, graph):
    """`a -> b (in a function) -> a`."""
    text = cycle[0]
    for a, b in zip(cycle, cycle[1:]):
        text += f" -> {b}" + (" (in a function)" if graph[a][b] else "")
    return text


def test_cycle_finder_on_a_hand_made_graph():
    graph = {"a": {"b": False}, "b": {"c": False}, "c": {"a": True}, "d": {"a": False, "e": False},
             "e": {"d": False}, "f": {}}
    cycles = sorted(tuple(c) for c in find_cycles(graph))
    assert cycles == [("a", "b", "c", "a"), ("d", "e", "d")]
    assert describe(["a", "b", "c", "a"], graph) == "a -> b -> c -> a (in a function)"
    assert find_cycles({"a": {"b": False}, "b": {}}) == []


def test_import_graph_reads_every_import_but_type_checking_ones(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .x import X\n")
    (pkg / "sub" / "x.py").write_text(textwrap.dedent("""
        import os
        from pkg import y
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            import pkg.w
        try:
            from ..z import helper
        except ImportError:
            pass
        def later():
            import pkg.w
    """))
    (pkg / "y.py").write_text("class Y:\n    from pkg.sub import x\n")
    (pkg / "z.py").write_text("")
    (pkg / "w.py").write_text("")
    modules = package_modules(pkg, "pkg")
    assert set(modules) == {"pkg", "pkg.sub", "pkg.sub.x", "pkg.y", "pkg.z", "pkg.w"}
    graph = import_graph(modules)
    assert graph["pkg.sub"] == {"pkg.sub.x": False}
    # `from ..z import helper`: helper is a name in pkg.z; pkg.w only in a function
    assert graph["pkg.sub.x"] == {"pkg.y": False, "pkg.z": False, "pkg.w": True}
    assert graph["pkg.y"] == {"pkg.sub.x": False}
    assert find_cycles(graph) == [["pkg.sub.x", "pkg.y", "pkg.sub.x"]]


def test_no_import_cycle():
    graph = import_graph(package_modules())
    cycles = find_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(describe(c, graph) for c in cycles)


def test_every_module_imports_in_a_fresh_interpreter():
    names = sorted(n for n in package_modules() if n != "tfdistil.__main__")  # __main__ runs the CLI
    script = textwrap.dedent(f"""
        import importlib, traceback
        failed = []
        for name in {names!r}:
            try:
                importlib.import_module(name)
            except Exception:
                failed.append(name + ":\\n" + traceback.format_exc())
        print("\\n".join(failed))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=_env(TF_CPP_MIN_LOG_LEVEL="2"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "", f"modules that failed to import:\n{result.stdout}"


# ----------------------------------------------------------------------------- quiet start-up


def _env(**overrides):
    """This environment with the worktree first on the path, TF_CPP_MIN_LOG_LEVEL unset (as a user
    who sets nothing; conftest sets it for the tests' own process), then `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFDISTIL_QUIET_TF")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(overrides)
    return env


def _run(args, **env):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          env=_env(**env), timeout=600)


def test_log_line_pattern_matches_what_tensorflow_prints():
    # Lines TensorFlow 2.21 printed on this project's CPU machine, copied from a terminal.
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "I0000 00:00:1796410182.042520    5353 port.cc:153] oneDNN custom operations are on.",
        "E0000 00:00:1796410249.951651    6320 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow with "
        "the appropriate compiler flags.",
    ]
    assert all(TF_LOG_LINE.search(line) for line in lines)
    assert not TF_LOG_LINE.search("usage: tfdistil [-h] {finetune,distill} ...\nError: no such file: x.csv")


def test_filter_drops_tensorflow_records_below_the_level_and_keeps_the_rest():
    banner = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    info = b"I0000 00:00:1796410182.102486    5353 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
    second = b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
    warning = b"W0000 00:00:1796410182.1    5353 x.cc:1] a warning\n"
    error = b"E0000 00:00:1796410249.951651    6320 cuda_platform.cc:52] failed call to cuInit\n"
    other = [b"/x.py:7: UserWarning: kept\n", b"  warnings.warn('kept')\n", b"plain line\n"]
    lines = [banner, info, second, other[0], other[1], warning, error, other[2]]
    assert list(filter_log_lines(lines, 3)) == other
    assert list(filter_log_lines(lines, 2)) == [other[0], other[1], error, other[2]]
    assert list(filter_log_lines(lines, 0)) == lines
    # an unprefixed line after a dropped record is kept unless it is the known second line
    assert list(filter_log_lines([info, b"Traceback (most recent call last):\n"], 3)) == [
        b"Traceback (most recent call last):\n"]


def test_filtered_stderr_passes_other_lines_on_even_through_an_abort():
    script = textwrap.dedent("""
        import os, sys
        from tfdistil._env import _FilteredStderr
        with _FilteredStderr(3):
            os.write(2, b"I0000 00:00:1796410544.537522   12067 port.cc:153] dropped\\n")
            os.write(2, b"native line\\n")
            print("python line", file=sys.stderr, flush=True)
            os.write(2, b"F0000 00:00:1796410544.537522   12067 x.cc:1] fatal record\\n")
            os.abort()
    """)
    result = _run(["-c", script])
    assert result.returncode != 0
    assert result.stderr.splitlines() == ["native line", "python line",
                                          "F0000 00:00:1796410544.537522   12067 x.cc:1] fatal record"]


@pytest.mark.parametrize("args", [["--help"], ["distill", "--help"], ["finetune", "--no-such-flag"]],
                         ids=["help", "distill-help", "bad-flag"])
def test_cli_answers_without_tensorflow_log_lines(args):
    result = _run(["-m", "tfdistil", *args])
    assert result.returncode == (2 if "--no-such-flag" in args else 0), result.stderr[-3000:]
    assert "usage: tfdistil" in (result.stdout if "--help" in args else result.stderr)
    assert not TF_LOG_LINE.search(result.stderr), result.stderr


def test_import_tfdistil_and_cli_do_not_import_tensorflow():
    result = _run(["-c", "import sys, tfdistil, tfdistil.cli; print(sorted(m for m in sys.modules "
                         "if m.split('.')[0] in ('tensorflow', 'keras')))"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]"


TF_WORK = textwrap.dedent("""
    import sys, warnings
    from tfdistil._env import quiet_tensorflow
    assert quiet_tensorflow()
    import keras, numpy as np, tensorflow as tf, tensorflow_text
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    model.fit(tf.data.Dataset.from_tensor_slices((np.ones((4, 3)), np.ones((4, 2)))).batch(2), verbose=0)
    print("gpus", tf.config.list_physical_devices("GPU"))
    print("after the import", file=sys.stderr)
""")


def test_tensorflow_after_quiet_tensorflow_prints_no_log_line():
    result = _run(["-c", TF_WORK])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gpus" in result.stdout
    assert not TF_LOG_LINE.search(result.stderr), result.stderr
    assert "after the import" in result.stderr


def test_user_log_level_is_obeyed():
    # TF_CPP_MIN_LOG_LEVEL=0: the user asked for everything, and TF's loading-time records show.
    result = _run(["-c", TF_WORK], TF_CPP_MIN_LOG_LEVEL="0")
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"^I\d{4} .*\] ", result.stderr, re.MULTILINE), result.stderr
