"""How many options should rank decoding return for a multi-answer (query) question?

Rank decoding keeps the best option and every other option whose probability is at least
`threshold` × the best one's (models/decoding.py, MULTI_THRESHOLD). This script scores the
options of the validation split's query questions once and prints exact match for a sweep of
thresholds (1.0 = the best option only), beside the mean answer-set size of gold and predicted.
It is run on the validation split only: the threshold must never be chosen on test.

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
    from qheart.models.decoding import MULTI_THRESHOLD, choose
    from qheart.training.instruct_data import Benchmark

    model = QHeart.from_pretrained(args.model)
    data = split_questions(model, Benchmark.from_path(args.data), "valid", None, None,
                           progress=False)
    query = [i for i, s in enumerate(data.samples) if s.question_type == "single-query"]
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(query, size=min(args.questions, len(query)), replace=False).tolist())
    data = data.select(pick)
    scored = [(s.answer, o) for s, o in zip(data.samples, data.options, strict=True)]
    probs = rank_probabilities(model, data)  # one ranking pass; every threshold reuses it
    print(f"{len(pick)} validation query questions; current MULTI_THRESHOLD = {MULTI_THRESHOLD}")
    print(f"{'threshold':>9s} {'EM':>6s} {'mean |predicted|':>17s} {'mean |gold|':>12s}")
    gold_size = np.mean([len(g) for g, _ in scored])
    for threshold in THRESHOLDS:
        hits, sizes = [], []
        for (gold, options), p in zip(scored, probs, strict=True):
            answer, _ = choose(options, np.log(np.maximum(p, 1e-30)), multi=True,
                               threshold=threshold)
            hits.append(answers_match(answer, gold))
            sizes.append(len(answer))
        print(f"{threshold:9.2f} {np.mean(hits):6.3f} {np.mean(sizes):17.2f} {gold_size:12.2f}")


def rank_probabilities(model, data) -> list[np.ndarray]:
    """Option probabilities per question (rank decoding's softmax over its options)."""
    from qheart.api import RetrievedReportView
    from qheart.models.question_kinds import ResolvedQuestion

    out = []
    for start in range(0, len(data), 16):
        idx = list(range(start, min(start + 16, len(data))))
        samples = [data.samples[i] for i in idx]
        resolved = [ResolvedQuestion(s.question_type, data.options[i], s.template_id, [])
                    for s, i in zip(samples, idx, strict=True)]
        reports = [[RetrievedReportView(-1, float("nan"), r) for r in data.reports[i][:1]]
                   for i in idx]
        answers = model.answer_resolved(data.store.signals(data.rows[idx]),
                                        [s.question for s in samples], resolved, reports, "rank",
                                        measurements=[data.measurements[i] for i in idx]
                                        if data.measurements else None)
        out += [np.array([a.scores[o] for o in a.options]) for a in answers]
    return out


if __name__ == "__main__":
    main()
