"""The names ``openrlhf.models.ring_attn_utils`` imports; calling any of them is an error."""

from typing import Any


def _missing(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("flash-attn is not installed (this stub only lets OpenRLHF's modules import)")


index_first_axis = pad_input = rearrange = unpad_input = _missing
