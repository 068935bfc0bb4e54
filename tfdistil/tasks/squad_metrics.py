"""SQuAD post-processing (best span over a question's windows) and scoring (exact match and F1 as
the official SQuAD v1.1 evaluation script defines them).

The span search is the one the SavedModel's `serving_default` runs in the graph
(`tfdistil.export.signatures.SpanQAServing`), tie for tie: per window the `n_best` best start and
end logits among context tokens (ties: the lower position), every pair with start <= end and at
most `max_answer_length` tokens scored start_logit + end_logit, the best pair (ties: the better
ranked start, then end), then the best window (ties: the first)."""
import collections
import re
import string

import numpy as np

from tfdistil.data.squad import DEFAULT_MAX_ANSWER_LENGTH, DEFAULT_N_BEST

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text):
    """The official script's normalisation: lower case, punctuation removed, articles (a, an,
    the) removed, whitespace collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, reference):
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1_score(prediction, reference):
    """Token F1 of the normalised texts (bag of words). An empty reference (a SQuAD v2.0
    impossible question) scores 1 for an empty prediction, else 0, as the v2.0 script does."""
    pred, gold = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not gold:
        return float(pred == gold)
    same = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions, examples):
    """{"exact_match", "f1"} in percent (as the official script prints them): the mean over
    questions of the best score over each question's references. `predictions`: {qid: text}."""
    if not examples:
        return {"exact_match": 0.0, "f1": 0.0}
    em = f1 = 0.0
    for example in examples:
        references = [text for text, _ in example.answers] or [""]
        prediction = predictions.get(example.qid, "")
        em += max(exact_match(prediction, r) for r in references)
        f1 += max(f1_score(prediction, r) for r in references)
    return {"exact_match": 100.0 * em / len(examples), "f1": 100.0 * f1 / len(examples)}


def best_window_span(start_logits, end_logits, in_context, n_best=DEFAULT_N_BEST,
                     max_answer_length=DEFAULT_MAX_ANSWER_LENGTH):
    """(score, start, end) of the best span of one window, positions in the window; None when
    the window has no context token."""
    positions = np.flatnonzero(in_context)
    if not len(positions):
        return None
    start_logits = np.asarray(start_logits, np.float32)
    end_logits = np.asarray(end_logits, np.float32)
    k = min(n_best, len(positions))
    # Best first, ties to the lower position (tf.math.top_k's order).
    starts = positions[np.argsort(-start_logits[positions], kind="stable")[:k]]
    ends = positions[np.argsort(-end_logits[positions], kind="stable")[:k]]
    scores = start_logits[starts][:, None] + end_logits[ends][None, :]  # (k starts, k ends)
    length = ends[None, :] - starts[:, None]
    valid = (length >= 0) & (length < max_answer_length)
    if not valid.any():
        return None
    scores = np.where(valid, scores, -np.inf)
    best = int(np.flatnonzero(scores == scores.max())[0])  # row-major: the better start, then end
    i, j = divmod(best, k)
    return float(scores[i, j]), int(starts[i]), int(ends[j])


def best_answers(data, features, start_logits, end_logits, n_best=DEFAULT_N_BEST,
                 max_answer_length=DEFAULT_MAX_ANSWER_LENGTH):
    """{qid: (answer text, score, start_char, end_char)} of every question of `data`, from the
    logits of each window of `features` (lists, one array a window, in the features' order). The
    text is the context's characters [start_char, end_char); a question without any valid span
    gets ("", -inf, -1, -1)."""
    best = {}
    for w in range(len(features)):
        token_start = features.token_start[w]
        n = len(token_start)
        found = best_window_span(start_logits[w][:n], end_logits[w][:n], token_start >= 0, n_best,
                                 max_answer_length)
        e = int(features.example[w])
        if found is not None and (e not in best or found[0] > best[e][0]):
            best[e] = (found[0], int(token_start[found[1]]), int(features.token_end[w][found[2]]))
    answers = {}
    for e, example in enumerate(data.examples):
        if e not in best:
            answers[example.qid] = ("", float("-inf"), -1, -1)
            continue
        score, a, b = best[e]
        to_char = features.byte_to_char[e]
        start_char, end_char = int(to_char[a]), int(to_char[b])
        answers[example.qid] = (example.context[start_char:end_char], score, start_char, end_char)
    return answers
