"""Per-environment configuration of the cloud stacks: typed, validated, one YAML file per environment."""

from infra.config.loader import load_env, load_versions
from infra.config.models import (
    ENVIRONMENTS,
    Binary,
    ChartVersion,
    ClusterConfig,
    DatabaseConfig,
    EnvConfig,
    GithubConfig,
    NetworkConfig,
    NodeGroupConfig,
    QdrantConfig,
    StorageConfig,
    Versions,
)

__all__ = [
    "ENVIRONMENTS",
    "Binary",
    "ChartVersion",
    "ClusterConfig",
    "DatabaseConfig",
    "EnvConfig",
    "GithubConfig",
    "NetworkConfig",
    "NodeGroupConfig",
    "QdrantConfig",
    "StorageConfig",
    "Versions",
    "load_env",
    "load_versions",
]
