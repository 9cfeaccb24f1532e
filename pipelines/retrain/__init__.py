"""Retraining: refit a version's head on the in-domain plus the shifted-domain training data, register the result.

`breakers` decides whether a retraining may run (policy `retraining`); `train` builds the new package from the
parent's (same encoder, new head) and measures both on both domains; `run` ties them to the registry.
"""
