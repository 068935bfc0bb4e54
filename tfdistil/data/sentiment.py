"""A small English sentiment dataset that ships inside the package, where word order decides.

Sentences are built from templates and word lists written for this project: one or two clauses
about a film, whose label follows from *negation* (flips a clause; "hardly" and "far from" too)
and *contrast* (in "A , but B" and "although A , B", clause B decides). Every modifier and
adjective occurs about equally in both labels, so a bag of words is not enough: the quick start
needs a model that reads order. The generator also writes two harder rules, "B , even though A"
and *intensity* (of two clashing clauses joined by "and", the intensified one beats a plain one,
a plain or negated one beats a diminished one), left out of the shipped files (`HARDER_TEMPLATES`).

One training label in five is wrong (`LABEL_NOISE`), as in real labelled sets; the dev labels
are right. The shipped `sentiment_train.tsv` (8,000 sentences) and `sentiment_dev.tsv` (500)
(``label<TAB>sentence``) are exactly `generate_sentiment_dataset()`'s defaults; regenerate them
with ``python -m tfdistil.data.sentiment``.
"""
from __future__ import annotations

import importlib.resources
import random
from pathlib import Path
from typing import NamedTuple

from tfdistil.data.readers import TextClassificationData, read_text_classification

__all__ = [
    "SentimentExample",
    "generate_sentiment_dataset",
    "write_sentiment_dataset",
    "load_sentiment_dataset",
    "sentiment_dataset_path",
    "SENTIMENT_LABEL_NAMES",
    "SENTIMENT_SPLITS",
    "DEFAULT_N_TRAIN",
    "DEFAULT_N_DEV",
]

SENTIMENT_LABEL_NAMES = ["negative", "positive"]
SENTIMENT_SPLITS = ("train", "dev")
DEFAULT_N_TRAIN = 8000
DEFAULT_N_DEV = 500
_FILES = {"train": "sentiment_train.tsv", "dev": "sentiment_dev.tsv"}

# --- word lists -----------------------------------------------------------------------------
# Aspects of a film: the subject of a copular clause, the object of an experiencer clause.
ASPECTS = (
    "the movie", "this film", "the story", "the plot", "the acting", "the cast", "the script",
    "the dialogue", "the soundtrack", "the ending", "the pacing", "the direction", "the humor",
    "the visuals", "the premise", "the second half", "the lead performance", "the camera work",
    "the editing", "the villain", "the opening scene", "the characters",
)
COPULAS = ("was", "is", "felt", "seemed")
POSITIVE_ADJECTIVES = (
    "good", "great", "wonderful", "charming", "clever", "delightful", "gripping", "beautiful",
    "funny", "brilliant", "moving", "fresh", "engaging", "superb", "memorable", "enjoyable",
)
NEGATIVE_ADJECTIVES = (
    "bad", "boring", "dull", "awful", "clumsy", "tedious", "bland", "messy", "predictable",
    "lifeless", "forgettable", "painful", "weak", "shallow", "silly", "tiresome",
)
# Experiencer verbs, (past, base) forms: "i loved ..." / "i did not love ...".
POSITIVE_VERBS = (
    ("loved", "love"), ("enjoyed", "enjoy"), ("liked", "like"), ("adored", "adore"),
    ("admired", "admire"), ("appreciated", "appreciate"),
)
NEGATIVE_VERBS = (
    ("hated", "hate"), ("disliked", "dislike"), ("loathed", "loathe"), ("despised", "despise"),
    ("resented", "resent"), ("detested", "detest"),
)
PRONOUNS = ("i", "we")
# Modifiers. Negators flip a clause's polarity; intensifiers double its weight; diminishers
# halve it ("hardly" and "far from" are diminishers that negate, and so live with the negators).
ADJECTIVE_NEGATORS = ("not", "never", "hardly", "far from")
VERB_NEGATORS = ("did not", "never", "hardly")  # "did not" takes the base form, the others past
ADJECTIVE_INTENSIFIERS = ("very", "really", "truly", "extremely", "incredibly", "utterly")
VERB_INTENSIFIERS = ("really", "truly", "absolutely", "thoroughly")
ADJECTIVE_DIMINISHERS = ("slightly", "somewhat", "a bit", "a little", "mildly")
VERB_DIMINISHERS = ("somewhat", "mildly", "sort of", "kind of")

# Template -> weight. See the module docstring for the rule each template encodes.
# Single clauses are half the data: they carry the lexicon (which words are positive) and
# negation, which a model trained from scratch must pick up before it can learn which
# clause of a contrast counts.
TEMPLATES = {"single": 0.5, "but": 0.25, "although": 0.25}
# Harder rules the generator also writes (`generate_sentiment_dataset(templates=...)`): "B , even
# though A" (the first clause decides) and intensity. A teacher trained from scratch in the quick
# start's budget learns them on some seeds only, so the shipped files leave them out.
HARDER_TEMPLATES = {"single": 0.5, "but": 0.15, "although": 0.1, "even_though": 0.1, "intensity": 0.15}
# Share of "free" clauses that are negated.
NEGATION_RATE = 0.3
# Share of training labels that are wrong: real labelled sets carry 8-38 % (Song et al., 2022,
# "Learning from noisy labels with deep neural networks: a survey"). Dev labels stay right.
LABEL_NOISE = 0.2

# Clause modifier kinds and the weight they give a clause in an "intensity" sentence.
_STRENGTH = {"plain": 2, "negated": 2, "intensified": 4, "diminished": 1}


class SentimentExample(NamedTuple):
    """One generated sentence. `template` says which rule decides its label; `noisy` that the
    label is the wrong one (`label_noise`)."""

    label: str
    sentence: str
    template: str
    noisy: bool = False


def _clause(rng: random.Random, polarity: int, kind: str) -> str:
    """A clause whose meaning has `polarity` (+1/-1), with a modifier of `kind`."""
    aspect = rng.choice(ASPECTS)
    # A negated clause uses a word of the opposite polarity: "not good" means negative.
    surface = -polarity if kind == "negated" else polarity
    if rng.random() < 0.6:  # copular: "the plot was truly good"
        adjective = rng.choice(POSITIVE_ADJECTIVES if surface > 0 else NEGATIVE_ADJECTIVES)
        modifier = {
            "plain": None,
            "negated": ADJECTIVE_NEGATORS,
            "intensified": ADJECTIVE_INTENSIFIERS,
            "diminished": ADJECTIVE_DIMINISHERS,
        }[kind]
        words = [aspect, rng.choice(COPULAS)]
        if modifier:
            words.append(rng.choice(modifier))
        words.append(adjective)
    else:  # experiencer: "i did not enjoy the plot"
        past, base = rng.choice(POSITIVE_VERBS if surface > 0 else NEGATIVE_VERBS)
        words = [rng.choice(PRONOUNS)]
        if kind == "negated":
            negator = rng.choice(VERB_NEGATORS)
            words += [negator, base if negator == "did not" else past]
        elif kind == "intensified":
            words += [rng.choice(VERB_INTENSIFIERS), past]
        elif kind == "diminished":
            words += [rng.choice(VERB_DIMINISHERS), past]
        else:
            words.append(past)
        words.append(aspect)
    return " ".join(words)


def _free_kind(rng: random.Random) -> str:
    """Modifier of a clause whose weight does not matter: negated `NEGATION_RATE` of the time, so
    that an adjective's own polarity often disagrees with the clause's meaning."""
    if rng.random() < NEGATION_RATE:
        return "negated"
    return rng.choice(("plain", "intensified", "diminished"))


def _sentence(rng: random.Random, template: str, label: int) -> str:
    polarity = 1 if label == 1 else -1
    if template == "single":
        return f"{_clause(rng, polarity, _free_kind(rng))} ."
    if template in ("but", "although", "even_though"):
        # Contrast joins clauses of opposite meaning; the connective says which one counts.
        decisive = _clause(rng, polarity, _free_kind(rng))
        other = _clause(rng, -polarity, _free_kind(rng))
        if template == "but":
            return f"{other} , but {decisive} ."
        if template == "although":
            return f"although {other} , {decisive} ."
        return f"{decisive} , even though {other} ."
    if template == "intensity":
        # Two clashing clauses joined by "and": the heavier one decides, in either order.
        kinds = list(_STRENGTH)
        while True:
            strong, weak = rng.choice(kinds), rng.choice(kinds)
            if _STRENGTH[strong] > _STRENGTH[weak]:
                break
        clauses = [_clause(rng, polarity, strong), _clause(rng, -polarity, weak)]
        rng.shuffle(clauses)
        return f"{clauses[0]} and {clauses[1]} ."
    raise ValueError(f"Unknown template {template!r}; expected one of {list(TEMPLATES)}.")


def generate_sentiment_dataset(
    seed: int = 0, n_train: int = DEFAULT_N_TRAIN, n_dev: int = DEFAULT_N_DEV, label_noise: float = LABEL_NOISE,
    templates: dict[str, float] | None = None,
) -> dict[str, list[SentimentExample]]:
    """Generate the dataset: {"train": [...], "dev": [...]} of `SentimentExample` rows.

    `templates` ({name: weight}, default `TEMPLATES`) says which rules decide the labels.
    Deterministic for a given (seed, n_train, n_dev, label_noise, templates). Each split is balanced,
    template by template (one sentence of each class per template draw), has no repeated
    sentence, and no dev sentence occurs in train. Then each training label is flipped with
    probability `label_noise` (marked `noisy`); dev labels stay right, so dev accuracy measures
    the rules.
    """
    if n_train < 2 or n_dev < 2:
        raise ValueError(f"n_train and n_dev must be at least 2, got n_train={n_train}, n_dev={n_dev}.")
    if not 0.0 <= label_noise < 0.5:
        raise ValueError(f"label_noise must be in [0, 0.5), got {label_noise}.")
    rng = random.Random(seed)
    templates, weights = list(templates or TEMPLATES), list((templates or TEMPLATES).values())
    seen: set[str] = set()
    splits = {}
    for split, n in (("train", n_train), ("dev", n_dev)):
        rows = []
        while len(rows) < n:
            # One negative and one positive sentence per template draw: every template is
            # balanced on its own, so no template's share of a class gives the label away.
            template = rng.choices(templates, weights)[0]
            for label in (0, 1)[: n - len(rows)]:
                sentence = _sentence(rng, template, label)
                while sentence in seen:
                    sentence = _sentence(rng, template, label)
                seen.add(sentence)
                rows.append(SentimentExample(SENTIMENT_LABEL_NAMES[label], sentence, template))
        rng.shuffle(rows)
        splits[split] = rows
    flip = {"negative": "positive", "positive": "negative"}
    splits["train"] = [r._replace(label=flip[r.label], noisy=True) if rng.random() < label_noise else r
                       for r in splits["train"]]
    return splits


def _tsv(rows) -> str:
    return "label\tsentence\n" + "".join(f"{r.label}\t{r.sentence}\n" for r in rows)


def write_sentiment_dataset(
    directory, seed: int = 0, n_train: int = DEFAULT_N_TRAIN, n_dev: int = DEFAULT_N_DEV
):
    """Write `sentiment_train.tsv` and `sentiment_dev.tsv` into `directory`; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in generate_sentiment_dataset(seed, n_train, n_dev).items():
        path = directory / _FILES[split]
        path.write_text(_tsv(rows), encoding="utf-8", newline="\n")
        paths[split] = path
    return paths


def sentiment_dataset_path(split: str = "train"):
    """The shipped file of `split` (an importlib.resources Traversable)."""
    if split not in _FILES:
        raise ValueError(f"split must be one of {SENTIMENT_SPLITS}, got {split!r}.")
    return importlib.resources.files("tfdistil.data").joinpath(_FILES[split])


def load_sentiment_dataset(split: str = "train") -> TextClassificationData:
    """The shipped sentiment split as TextClassificationData (labels: 0 negative, 1 positive)."""
    resource = sentiment_dataset_path(split)
    with importlib.resources.as_file(resource) as path:
        return read_text_classification(
            path, text_column="sentence", label_column="label", format="tsv",
            label_names=SENTIMENT_LABEL_NAMES,
        )


def _main():
    target = Path(__file__).resolve().parent
    paths = write_sentiment_dataset(target)
    for split, path in paths.items():
        print(f"wrote {path}")


if __name__ == "__main__":
    _main()
