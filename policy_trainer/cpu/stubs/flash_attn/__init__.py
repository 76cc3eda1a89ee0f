"""Stand-in for flash-attn (a CUDA build) where OpenRLHF imports it at module top level.

See tests/openrlhf_rollout.py.
"""
