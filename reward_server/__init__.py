"""UnifiReward: the reward service for emotional support conversation models."""
