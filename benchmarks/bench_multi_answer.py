"""How many options should rank decoding return for a multi-answer (query) question?

Two rules (models/decoding.py). `grow` adds options while the set they make, written as the
model was trained to write it, gets more probable; with a lookahead it tries that many additions
that do not help before it stops. `threshold` keeps the best option and every other option
whose probability is at least `threshold` × the best one's. This script scores the validation
split's query questions once — every option, and the whole path of the grow search with the
largest lookahead, which answers for every smaller one — and prints exact match per rule beside
the mean answer-set size of gold and predicted, for all query questions and for the
multi-answer ones (gold or prediction with more than one option). It reads the validation split
only: a rule must never be chosen on test.

    .venv/bin/python benchmarks/bench_multi_answer.py --model runs/demo/qheart \
        --data runs/demo/bench --questions 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)
LOOKAHEADS = (0, 1, 2, 3, 11)


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
    from qheart.models.decoding import GROW_LOOKAHEAD, MULTI_RULE, MULTI_THRESHOLD, choose
    from qheart.training.instruct_data import Benchmark

    model = QHeart.from_pretrained(args.model)
    data = split_questions(model, Benchmark.from_path(args.data), "valid", None, None,
                           progress=False)
    query = [i for i, s in enumerate(data.samples) if s.question_type == "single-query"]
    rng = np.random.default_rng(0)
    pick = sorted(rng.choice(query, size=min(args.questions, len(query)), replace=False).tolist())
    data = data.select(pick)
    golds = [s.answer for s in data.samples]
    singles, paths, multi = score_paths(model, data, max(LOOKAHEADS))
    print(f"{len(pick)} validation query questions ({sum(multi)} multi-answer); default: "
          f"{MULTI_RULE!r}, lookahead {GROW_LOOKAHEAD}, threshold {MULTI_THRESHOLD}")
    print(f"{'rule':>15s} {'EM':>6s} {'EM multi':>9s} {'mean |predicted|':>17s} "
          f"{'mean |gold|':>12s}")
    gold_size = np.mean([len(g) for g in golds])

    def row(name: str, answers: list[list[str]]) -> None:
        hits = np.array([answers_match(a, g) for a, g in zip(answers, golds, strict=True)])
        several = np.array([len(a) > 1 or len(g) > 1
                            for a, g in zip(answers, golds, strict=True)])
        sizes = np.mean([len(a) for a in answers])
        print(f"{name:>15s} {hits.mean():6.3f} "
              f"{hits[several].mean() if several.any() else 0:9.3f} "
              f"{sizes:17.2f} {gold_size:12.2f}")

    from qheart.models.decoding import best_on_path

    for lookahead in LOOKAHEADS:
        row(f"grow +{lookahead}", [
            [opts[i] for i in best_on_path(path, lookahead)] if path else
            choose(opts, lp, multi=False)[0]
            for opts, lp, path in zip(data.options, singles, paths, strict=True)])
    for threshold in THRESHOLDS:
        row(f"threshold {threshold:.2f}",
            [choose(opts, lp, multi=m, threshold=threshold)[0]
             for opts, lp, m in zip(data.options, singles, multi, strict=True)])


def score_paths(model, data, lookahead: int, batch: int = 16):
    """One pass: each option's log-probability, the grow search's path (None for questions
    that take one answer), and which questions are multi-answer."""
    import torch

    from qheart.api import RetrievedReportView
    from qheart.models.decoding import answer_scorer, grow_questions, is_multi_answer, split_scores
    from qheart.models.question_kinds import ResolvedQuestion

    singles, paths, multi = [], [], []
    for start in range(0, len(data), batch):
        idx = list(range(start, min(start + batch, len(data))))
        samples = [data.samples[i] for i in idx]
        options = [data.options[i] for i in idx]
        resolved = [ResolvedQuestion(s.question_type, o, s.template_id, [])
                    for s, o in zip(samples, options, strict=True)]
        reports = [[RetrievedReportView(-1, float("nan"), r) for r in data.reports[i][:1]]
                   for i in idx]
        texts = model.prompt_texts([s.question for s in samples], resolved, reports,
                                   [data.measurements[i] for i in idx]
                                   if data.measurements else None)
        signals = torch.as_tensor(data.store.signals(data.rows[idx]), dtype=torch.float32) \
            if model.config.use_ecg else None
        score = answer_scorer(model.model, model.prompts, texts, signals)
        lps = split_scores(score([(q, o) for q, opts in enumerate(options) for o in opts]),
                           options)
        by_q = grow_questions(score, options, lps,
                              [q for q, (s, o) in enumerate(zip(samples, options, strict=True))
                               if is_multi_answer(s.question_type, o)], lookahead)
        singles += lps
        paths += [by_q.get(q) for q in range(len(idx))]
        multi += [q in by_q for q in range(len(idx))]
    return singles, paths, multi


if __name__ == "__main__":
    main()
