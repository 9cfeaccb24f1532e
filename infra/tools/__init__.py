"""Tooling around the cloud stacks: checkov installer, synth benchmark."""
