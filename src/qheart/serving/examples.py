"""Example ECGs offered on the page, simulated at start-up (no data file is shipped).

They come from the synthetic generator, so each carries its exact findings and machine report: a
person can compare the model's answer with the truth. Distinct rhythms are preferred so the few
examples differ visibly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Example:
    example_id: str
    title: str
    findings: list[str]
    report: str
    signal: np.ndarray  # canonical float32 (12, 5000) mV

    def summary(self) -> dict:
        return {"id": self.example_id, "title": self.title, "findings": self.findings,
                "report": self.report}


def make_examples(n: int, seed: int = 7) -> dict[str, Example]:
    """`n` synthetic ECGs, distinct rhythms first, in a fixed order for a given seed."""
    from qheart.data.synth.ecg import simulate
    from qheart.data.synth.reports import report_text

    chosen: list[Example] = []
    spare: list[Example] = []
    rhythms: set[str] = set()
    for draw in range(4 * n + 8):
        if len(chosen) >= n:
            break
        sim = simulate(np.random.default_rng([seed, draw]))
        rhythm = sim.truth.plan.rhythm
        example = Example(
            example_id=f"ex{draw}",
            title=rhythm[:1].upper() + rhythm[1:],
            findings=list(sim.truth.findings),
            report=report_text(sim.truth),
            signal=np.ascontiguousarray(sim.signal, dtype=np.float32),
        )
        if rhythm in rhythms:
            spare.append(example)
        else:
            rhythms.add(rhythm)
            chosen.append(example)
    chosen += spare[: n - len(chosen)]
    return {e.example_id: e for e in chosen[:n]}
