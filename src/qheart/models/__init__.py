"""Models: the ECG encoder, the text encoder used for pre-training, losses (later: ET-Mapper, LLM)."""
