"""qheart: ECG question answering with a knowledge-informed multimodal LLM (Q-HEART, ECAI 2025)."""

__version__ = "0.1.0"
