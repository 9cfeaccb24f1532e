"""FinOps: cost per 1,000 inferences for CPU and GPU serving, from measured throughput and policy prices."""
