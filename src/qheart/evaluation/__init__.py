"""Evaluation: encoder zero-shot / linear probe AUC (later: the paper's QA tables)."""
