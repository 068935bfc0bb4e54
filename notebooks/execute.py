"""Run the notebooks and save their outputs in place (what the committed notebooks carry).

    python notebooks/execute.py                      # all five, full mode (the real runs)
    python notebooks/execute.py 04 05                # only those (a number or a file name)
    python notebooks/execute.py --smoke              # TFDISTIL_SMOKE=1: tiny data, quick
    python notebooks/execute.py --smoke --out nb_smoke   # write executed copies elsewhere

Notebooks run one after the other with the notebooks folder as working directory (their
relative paths assume it), on the `python3` kernel of this Python. TensorFlow's C++ start-up
lines (absl logs such as "I0000 ... oneDNN custom operations are on", which
TF_CPP_MIN_LOG_LEVEL does not silence) are removed from the saved outputs. Then the
outputs are searched for absolute paths and the machine's name, which must not be
committed; any found are listed and the exit status is 1.
"""
import argparse
import os
import re
import socket
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Strings a committed output must not contain: absolute paths and this machine's name.
# Absolute folders of this kind of machine that must not leak into committed outputs.
FORBIDDEN = ["/" + name for name in ("work", "tmp", "home", "root")] + [str(Path.home())]
if len(socket.gethostname()) >= 4:  # a very short name would match ordinary words
    FORBIDDEN.append(socket.gethostname())


def notebooks(selection=()):
    """The notebooks in reading order, or those whose name starts with one of `selection`."""
    found = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return found
    chosen = [nb for nb in found if any(nb.name.startswith(s) for s in selection)]
    if len(chosen) < len(selection):
        raise SystemExit(f"no notebook matches every one of {list(selection)}; have {[nb.name for nb in found]}")
    return chosen


# absl's C++ log lines: "I0000 00:00:1795907252.567269   15448 port.cc:153] ..." and the
# banner before them; the continuation of the CPU-instructions message; TFLite's delegate line.
TF_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.]+:\d+\]|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:|INFO: Created TensorFlow Lite XNNPACK delegate)"
)


def strip_tf_logs(nb):
    """Drop TensorFlow's C++ log lines from stderr outputs (and outputs left empty)."""
    for cell in nb.cells:
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines = [line for line in out["text"].splitlines(keepends=True) if not TF_LOG_LINE.match(line)]
                out["text"] = "".join(lines)
                if not out["text"].strip():
                    continue
            kept.append(out)
        if cell.cell_type == "code":
            cell["outputs"] = kept


def output_text(nb):
    """All text the notebook's outputs show (streams, text/plain, html, errors)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif out.get("output_type") == "error":
                parts.append("\n".join([out.get("ename", ""), out.get("evalue", ""), *out.get("traceback", [])]))
            for mime in ("text/plain", "text/html", "text/markdown"):
                value = out.get("data", {}).get(mime)
                if value:
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def leaks(nb):
    text = output_text(nb)
    return sorted({s for s in FORBIDDEN if s and s in text})


def execute(path, out_dir=None, timeout=None):
    """Execute one notebook (cwd: its folder) and write it to `out_dir` or back in place."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    strip_tf_logs(nb)
    target = Path(out_dir) / path.name if out_dir else path
    nbformat.write(nb, target)
    return nb, target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("select", nargs="*", help="notebook numbers or names (default: all)")
    parser.add_argument("--smoke", action="store_true", help="set TFDISTIL_SMOKE=1 (tiny, quick runs)")
    parser.add_argument("--out", help="write executed notebooks here instead of in place")
    parser.add_argument("--timeout", type=int, default=None, help="seconds allowed per cell (default: none)")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.smoke:
        os.environ["TFDISTIL_SMOKE"] = "1"
    else:
        os.environ.pop("TFDISTIL_SMOKE", None)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
    status = 0
    for path in notebooks(args.select):
        start = time.time()
        print(f"{path.name}: running ({'smoke' if args.smoke else 'full'})", flush=True)
        nb, target = execute(path, args.out, args.timeout)
        print(f"{path.name}: done in {(time.time() - start) / 60:.1f} min -> {target}", flush=True)
        found = leaks(nb)
        if found:
            print(f"{path.name}: outputs contain {found}; remove them before committing", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
