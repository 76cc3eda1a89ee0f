"""The name ``openrlhf.models.ring_attn_utils`` imports; calling it is an error."""

from flash_attn.bert_padding import _missing as all_gather

__all__ = ["all_gather"]
