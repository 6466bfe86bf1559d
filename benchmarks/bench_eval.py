"""Answering a test split: batched rank and batched generate decoding against the authors' way.

The authors' evaluation answers one question at a time with free generation. Q-HEART answers in
batches, and by default ranks the candidate options instead of generating (one scoring pass, no
unparseable answers). This script times all three on the same model and the same questions in
one run, through the public API only (`QHeart.from_pretrained(...).ask_many`), and prints
questions/s, the speed-up over the authors' way, and the exact match each reaches.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_eval.py --model runs/exp/qheart \\
        --bench runs/demo/bench --questions 200

Questions: a fixed, type-mixed sample of the split (`fixed_subset`, the same one every run),
with their ECGs from the benchmark's signal store and the options `qheart evaluate` shows
(paper Table 1, via `candidate_options`). Reports are retrieved live from the model's index,
as `ask_many` does for any caller; test ECGs are not in an index built from corpus + train.
One question of each mode is answered before timing starts (lazy initialisation).

Measured on a 45-minute cpu-small Q-HEART (SmolLM2-135M, 10 layers; runs/h8/qheart), 200
questions, batch 16, 2 torch threads on an idle 2-core machine: authors' way 4.90 q/s (EM 0.465,
avg 0.430, 1 invalid), batched generate 4.69 q/s (0.96×, same answers), batched rank 6.73 q/s
(1.37×, EM 0.445, avg 0.406, never invalid). On CPU the forward passes are compute-bound, so
batching generation buys nothing; ranking saves the decoding loop. Its gain from batching needs
parallel hardware. With the grow rule for multi-answer sets (lookahead 3, which scores candidate
sets beyond the single options), a 60-minute model (runs/h12/qheart), same settings: authors' way
2.83 q/s (EM 0.485, 3 invalid), batched generate 3.55 q/s (1.26×, same EM), batched rank 2.69 q/s
(0.95×, EM 0.495, never invalid): the set search costs rank its speed lead.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 500.0  # the store holds canonical 500 Hz signals
MODES = {
    "authors": ("generate", 1, "generate, one question at a time (the authors' way)"),
    "generate": ("generate", None, "generate, batched"),
    "rank": ("rank", None, "rank options, batched"),
}
"""mode → (decode, batch size (None: --batch-size), label)."""


@dataclass
class Questions:
    """The benchmark questions with what `ask_many` needs and what scoring needs."""

    signals: np.ndarray  # (N, 12, 5000) float32
    texts: list[str]
    options: list[list[str]]
    gold: list[list[str]]
    types: list[str]
    attributes: list[str]


@dataclass
class ModeResult:
    mode: str
    label: str
    batch_size: int
    seconds: float
    n: int
    em_overall: float
    em_avg: float
    invalid: int
    type_mismatches: int
    """Answers whose resolved question type differs from the dataset's (the API resolves it)."""
    answers: list[frozenset[str]]
    """Each question's answer as a normalised set, to compare modes question by question."""

    @property
    def per_s(self) -> float:
        return self.n / self.seconds


def load_questions(bench: Path, variant: str, split: str, n: int) -> Questions:
    """`n` questions of the split whose ECG is in the store, the same ones every run."""
    from qheart.data.ecgqa import fixed_subset, join_store, load_split, load_template_options
    from qheart.data.options import candidate_options
    from qheart.data.store import SignalStore

    dataset = bench / "ecgqa" / "synthetic"
    if not dataset.is_dir():
        dataset = bench  # an ECG-QA folder given directly
    store = SignalStore(bench / "store")
    samples, _ = join_store(load_split(dataset, variant, split).samples, store)
    if not samples:
        raise SystemExit(f"{dataset}: no {variant}/{split} question has its ECG in {store.root}")
    chosen = fixed_subset(samples, min(1.0, n / len(samples)))
    template_options = load_template_options(dataset)
    rows = np.array([store.row_of(s.ecg_id) for s in chosen], dtype=np.int64)
    return Questions(
        signals=np.asarray(store.signals(rows), dtype=np.float32),
        texts=[s.question for s in chosen],
        options=[candidate_options(s, template_options) for s in chosen],
        gold=[list(s.answer) for s in chosen],
        types=[s.question_type for s in chosen],
        attributes=[s.attribute_type for s in chosen],
    )


def run_mode(model, q: Questions, mode: str, batch_size: int, progress: bool) -> ModeResult:
    """Answer every question in `mode`, timed; score the answers."""
    from tqdm.auto import tqdm

    from qheart.data.options import answer_set
    from qheart.evaluation.metrics import exact_match

    decode, fixed_batch, label = MODES[mode]
    size = fixed_batch or batch_size

    def ask(start: int, stop: int) -> list:
        return model.ask_many(list(q.signals[start:stop]), q.texts[start:stop],
                              sample_rate=SAMPLE_RATE, decode=decode,
                              options=q.options[start:stop])

    ask(0, 1)  # warm-up, untimed
    answers = []
    started = time.perf_counter()
    for start in tqdm(range(0, len(q.texts), size), desc=mode, unit="batch", disable=not progress,
                      leave=False):
        answers += ask(start, start + size)
    seconds = time.perf_counter() - started
    predicted = [a.answer for a in answers]
    em = exact_match(predicted, q.gold, q.types, q.attributes)
    return ModeResult(mode, label, size, seconds, len(answers), em.overall.accuracy,
                      em.avg.accuracy, sum(not p for p in predicted),
                      sum(a.question_type != t for a, t in zip(answers, q.types, strict=True)),
                      [frozenset(answer_set(p)) for p in predicted])


def same_answers(result: ModeResult, base: ModeResult) -> float:
    """Share of questions `result` answers with exactly `base`'s option set: equal EM can hide
    different answers."""
    return float(np.mean([a == b for a, b in zip(result.answers, base.answers, strict=True)]))


def print_table(results: list[ModeResult]) -> None:
    base = next((r for r in results if r.mode == "authors"), results[0])
    header = (f"{'mode':<52} {'batch':>5} {'seconds':>8} {'q/s':>7} {'speed-up':>8} "
              f"{'EM':>6} {'EM avg':>6} {'invalid':>7} {'same answer':>11}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.label:<52} {r.batch_size:>5} {r.seconds:>8.1f} {r.per_s:>7.2f} "
              f"{r.per_s / base.per_s:>7.2f}× {r.em_overall:>6.3f} {r.em_avg:>6.3f} "
              f"{r.invalid:>7} {same_answers(r, base):>11.3f}")
    print("EM: exact match over all questions; EM avg: mean of the per-type EMs (verify, choose, "
          "query); invalid: empty answers (generated text naming no option). Speed-up: q/s over "
          f"{base.label}; same answer: share of questions answered with the same option set "
          "as it.")
    mismatched = {r.mode: r.type_mismatches for r in results if r.type_mismatches}
    if mismatched:
        print(f"note: the API resolved another question type than the dataset's for "
              f"{max(mismatched.values())} of {base.n} questions (scored as answered).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="A `qheart train` model folder.")
    parser.add_argument("--bench", type=Path, default=Path("runs/demo/bench"),
                        help="Benchmark folder (store/ and ecgqa/synthetic/).")
    parser.add_argument("--split", default="test")
    parser.add_argument("--variant", default="paraphrased", choices=["paraphrased", "template"])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16, help="Questions per batched call.")
    parser.add_argument("--modes", default="authors,generate,rank",
                        help=f"Comma-separated, from {', '.join(MODES)}.")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda if present).")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default).")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        parser.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")

    import torch

    from qheart.api import QHeart

    if args.threads:
        torch.set_num_threads(args.threads)
    questions = load_questions(args.bench, args.variant, args.split, args.questions)
    model = QHeart.from_pretrained(args.model, device=args.device)
    counts = {t: questions.types.count(t) for t in sorted(set(questions.types))}
    print(f"{args.model}: {len(questions.texts)} {args.variant}/{args.split} questions {counts}, "
          f"{torch.get_num_threads()} torch threads, device {next(model.model.parameters()).device}"
          f", retrieval {'on' if model.retriever is not None else 'off'}", flush=True)
    for note in model.load_notes:
        print(f"note: {note}")
    results = []
    for mode in modes:
        results.append(run_mode(model, questions, mode, args.batch_size, not args.no_progress))
        r = results[-1]
        print(f"  {mode}: {r.n} questions in {r.seconds:.1f} s, EM {r.em_overall:.3f}", flush=True)
    print()
    print_table(results)


if __name__ == "__main__":
    main()
