"""How many options should rank decoding return for a multi-answer (query) question?

Two rules (models/decoding.py): `grow` adds options while the set they make, written as the
model was trained to write it, gets more probable; `threshold` keeps the best option and every
other option whose probability is at least `threshold` × the best one's. This script ranks the
validation split's query questions once with `grow` and prints its exact match, then the
`threshold` rule for a sweep of thresholds (1.0 = the best option only) from the same pass's
option probabilities, beside the mean answer-set size of gold and predicted, for all query
questions and for the multi-answer ones (gold or prediction with more than one option).
It is run on the validation split only: a rule must never be chosen on test.

    .venv/bin/python benchmarks/bench_multi_threshold.py --model runs/demo/model-qheart \
        --data runs/demo/bench --questions 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("runs/demo/bench"))
    parser.add_argument("--questions", type=int, default=200,
                        help="Query questions of the validation split to score (seeded subset).")
    args = parser.parse_args()

    from qheart.api import QHeart
    from qheart.data.options import answers_match
    from qheart.evaluation.evaluate import split_questions
    from qheart.models.decoding import MULTI_RULE, choose
    from qheart.training.instruct_data import Benchmark

    model = QHeart.from_pretrained(args.model)
    data = split_questions(model, Benchmark.from_path(args.data), "valid", None, None,
                           progress=False)
    query = [i for i, s in enumerate(data.samples) if s.question_type == "single-query"]
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(query, size=min(args.questions, len(query)), replace=False).tolist())
    data = data.select(pick)
    golds = [s.answer for s in data.samples]
    model.multi_rule = "grow"
    probs, grown = rank_probabilities(model, data)  # one ranking pass; every threshold reuses it
    print(f"{len(pick)} validation query questions; default rule {MULTI_RULE!r}")
    print(f"{'rule':>15s} {'EM':>6s} {'EM multi':>9s} {'mean |predicted|':>17s} "
          f"{'mean |gold|':>12s}")
    gold_size = np.mean([len(g) for g in golds])

    def row(name: str, answers: list[list[str]]) -> None:
        hits = np.array([answers_match(a, g) for a, g in zip(answers, golds, strict=True)])
        multi = np.array([len(a) > 1 or len(g) > 1 for a, g in zip(answers, golds, strict=True)])
        sizes = np.mean([len(a) for a in answers])
        print(f"{name:>15s} {hits.mean():6.3f} {hits[multi].mean() if multi.any() else 0:9.3f} "
              f"{sizes:17.2f} {gold_size:12.2f}")

    row("grow", grown)
    for threshold in THRESHOLDS:
        row(f"threshold {threshold:.2f}",
            [choose(options, np.log(np.maximum(p, 1e-30)), multi=True, threshold=threshold)[0]
             for options, p in zip(data.options, probs, strict=True)])


def rank_probabilities(model, data) -> tuple[list[np.ndarray], list[list[str]]]:
    """Option probabilities per question (rank decoding's softmax over its options) and the
    answer the model's rule gave."""
    from qheart.api import RetrievedReportView
    from qheart.models.question_kinds import ResolvedQuestion

    out, answers = [], []
    for start in range(0, len(data), 16):
        idx = list(range(start, min(start + 16, len(data))))
        samples = [data.samples[i] for i in idx]
        resolved = [ResolvedQuestion(s.question_type, data.options[i], s.template_id, [])
                    for s, i in zip(samples, idx, strict=True)]
        reports = [[RetrievedReportView(-1, float("nan"), r) for r in data.reports[i][:1]]
                   for i in idx]
        answered = model.answer_resolved(data.store.signals(data.rows[idx]),
                                         [s.question for s in samples], resolved, reports,
                                         "rank", measurements=[data.measurements[i] for i in idx]
                                         if data.measurements else None)
        out += [np.array([a.scores[o] for o in a.options]) for a in answered]
        answers += [list(a.answer) for a in answered]
    return out, answers


if __name__ == "__main__":
    main()
