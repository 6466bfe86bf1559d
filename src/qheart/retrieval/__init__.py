"""Retrieval: FAISS index over ECG embeddings with the reports beside it in SQLite."""
