"""GRPO training of ESC policies with OpenRLHF on Ray, rewarded by the reward and embedding services."""
