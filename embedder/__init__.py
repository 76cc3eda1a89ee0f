"""The embedding service: OpenAI-compatible embeddings and GRPO-group redundancy (COMPEER eq. 5-7)."""
