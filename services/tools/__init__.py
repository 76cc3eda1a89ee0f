"""Dev and ops tools: start, wait for and stop service processes."""
