"""The embedded default benchmark: synthetic 12-lead ECGs with exact ground truth, ECG-QA-style
questions about them, and machine-style reports (`qheart data synth`)."""

from qheart.data.synth.generate import SynthConfig, generate_benchmark

__all__ = ["SynthConfig", "generate_benchmark"]
