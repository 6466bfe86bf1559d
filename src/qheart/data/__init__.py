"""Data: ECG readers, the signal store, ECG-QA loading and the synthetic benchmark."""
