"""The cluster's images built from the repository's Containerfiles with podman, from a local Debian base."""
