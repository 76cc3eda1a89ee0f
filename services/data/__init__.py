"""Data and judge-training pipelines: ESConv, the derived judge data, the judge metrics."""
