"""Shadow traffic: the candidate's answers to mirrored requests, compared with stable's on the same texts.

`compare` pairs the two servers' inference-log records and measures agreement, per-label flip rates, the shift of
the predicted-label distribution and the change of confidence; its `judge` applies the thresholds.
"""
