"""Monthly cost of each environment, per layer, from `policy.yaml` prices and the environment config.

`python -m infra.tco` prints the tables the docs quote (`--markdown` for the docs' TCO appendices). Baseline =
what runs with no traffic: node groups at their desired size (GPU at 0), one NAT data estimate, storage at the
config's expected sizes. Spot nodes are priced at on-demand (an upper bound). Usage-driven items (GPU node-hours,
NAT traffic beyond the estimate) are listed with their unit price so scaling costs can be read off.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from core.policy import Prices, policy
from infra.config import ENVIRONMENTS, EnvConfig, NodeGroupConfig, load_env
from infra.stacks import LAYERS

PROMETHEUS_VOLUME_GIB = 50  # modules/addons.py storageSpec
# data: one per store (infra/stacks/data.py KEY_STORES) and the artifact-signing key
KMS_KEYS = {"network": 1, "cluster": 1, "data": 7}
RDS_HOURLY_KEY = {"db.t4g.medium": "rds_db_t4g_medium_per_hour", "db.m7g.large": "rds_db_m7g_large_per_hour"}


@dataclass(frozen=True)
class Item:
    layer: str
    name: str
    quantity: float
    unit: str
    unit_price: float

    @property
    def monthly(self) -> float:
        return self.quantity * self.unit_price


def _other(prices: Prices, key: str) -> float:
    try:
        return prices.other[key]
    except KeyError as exc:
        raise KeyError(f"policy.yaml prices.other.{key} is missing: add it with its source") from exc


def _node_group_items(layer: str, label: str, g: NodeGroupConfig, prices: Prices, hours: float) -> list[Item]:
    instance = g.instance_types[0]
    if instance not in prices.instances:
        raise KeyError(f"policy.yaml prices.instances has no {instance} (used by the {label} node group)")
    price = prices.instances[instance].usd_per_hour
    return [
        Item(
            layer, f"{label} nodes ({instance}, {g.capacity_type.lower()})", g.desired_size * hours, "node-hour", price
        ),
        Item(
            layer,
            f"{label} root volumes (gp3)",
            g.desired_size * g.disk_gib,
            "GB-month",
            _other(prices, "ebs_gp3_per_gb_month"),
        ),
    ]


def items(env: EnvConfig, prices: Prices | None = None) -> list[Item]:
    p = prices or policy().prices
    h = p.monthly_hours
    azs = len(env.network.azs)
    nats = azs if env.network.nat_gateways == "per_az" else 1
    out = [
        Item("network", "NAT gateways", nats * h, "NAT-hour", _other(p, "nat_gateway_per_hour")),
        Item("network", "NAT public IPv4", nats * h, "IP-hour", _other(p, "public_ipv4_per_hour")),
        Item(
            "network",
            "NAT data processed (estimate)",
            env.expected_nat_gb_per_month,
            "GB",
            _other(p, "nat_gateway_per_gb"),
        ),
        Item(
            "network",
            f"interface endpoints ({', '.join(env.network.interface_endpoints)}) x {azs} AZ",
            len(env.network.interface_endpoints) * azs * h,
            "endpoint-AZ-hour",
            _other(p, "vpc_interface_endpoint_per_az_hour"),
        ),
        Item("cluster", "EKS control plane", h, "cluster-hour", _other(p, "eks_cluster_per_hour")),
    ]
    c = env.cluster
    out += _node_group_items("cluster", "system", c.system, p, h)
    out += _node_group_items("cluster", "CPU inference", c.cpu_inference, p, h)
    out += _node_group_items("cluster", "GPU inference (min 0)", c.gpu_inference, p, h)
    out.append(
        Item(
            "cluster",
            "control-plane + flow logs ingested (estimate)",
            env.expected_log_gb_per_month,
            "GB",
            _other(p, "cloudwatch_logs_ingest_per_gb"),
        )
    )
    db = env.database
    copies = 2 if db.multi_az else 1
    if db.instance_class not in RDS_HOURLY_KEY:
        raise KeyError(f"no price key for {db.instance_class}: add it to RDS_HOURLY_KEY and policy.yaml")
    st = env.storage
    out += [
        Item(
            "data",
            f"RDS {db.instance_class}{' Multi-AZ' if db.multi_az else ''}",
            copies * h,
            "instance-hour",
            _other(p, RDS_HOURLY_KEY[db.instance_class]),
        ),
        Item(
            "data", "RDS gp3 storage", copies * db.allocated_storage_gib, "GB-month", _other(p, "rds_gp3_per_gb_month")
        ),
        Item(
            "data",
            "S3 artifacts (expected size)",
            st.expected_artifact_gib,
            "GB-month",
            _other(p, "s3_standard_per_gb_month"),
        ),
        Item(
            "data",
            "S3 inference logs (expected size)",
            st.expected_inference_log_gib,
            "GB-month",
            _other(p, "s3_standard_per_gb_month"),
        ),
        Item("data", "ECR images", st.expected_ecr_gib, "GB-month", _other(p, "ecr_storage_per_gb_month")),
        Item(
            "data",
            "S3 Qdrant snapshots (expected size)",
            env.qdrant.expected_snapshot_gib,
            "GB-month",
            _other(p, "s3_standard_per_gb_month"),
        ),
        Item(
            "data",
            "Secrets Manager (RDS master secret, registry users, alert receivers, Qdrant API key)",
            4,
            "secret-month",
            _other(p, "secrets_manager_secret_per_month"),
        ),
        Item("addons", "Prometheus volume (gp3)", PROMETHEUS_VOLUME_GIB, "GB-month", _other(p, "ebs_gp3_per_gb_month")),
        Item("addons", "Qdrant volume (gp3)", env.qdrant.volume_gib, "GB-month", _other(p, "ebs_gp3_per_gb_month")),
    ]
    out += [Item(layer, "KMS keys", n, "key-month", _other(p, "kms_key_per_month")) for layer, n in KMS_KEYS.items()]
    return out


def monthly_by_layer(env: EnvConfig, prices: Prices | None = None) -> dict[str, float]:
    totals = dict.fromkeys(LAYERS, 0.0)
    for item in items(env, prices):
        totals[item.layer] += item.monthly
    return totals


def gpu_node_hour(env: EnvConfig, prices: Prices | None = None) -> float:
    """What one GPU node costs per hour while a GPU pod keeps it up (instance + root volume)."""
    p = prices or policy().prices
    g = env.cluster.gpu_inference
    return (
        p.instances[g.instance_types[0]].usd_per_hour + g.disk_gib * _other(p, "ebs_gp3_per_gb_month") / p.monthly_hours
    )


def markdown(layer: str | None = None) -> str:
    p = policy().prices
    head = f"Prices: {p.other_source or 'policy.yaml prices'}; instances: AWS EC2 On-Demand ({p.region}).\n"
    lines = [head, "| environment | item | quantity | unit price (USD) | monthly (USD) |", "|---|---|---|---|---|"]
    totals = []
    for name in ENVIRONMENTS:
        env = load_env(name)
        selected = [i for i in items(env) if layer is None or i.layer == layer]
        for i in selected:
            lines.append(f"| {name} | {i.name} | {i.quantity:,.0f} {i.unit} | {i.unit_price:g} | {i.monthly:,.2f} |")
        total = sum(i.monthly for i in selected)
        totals.append(f"| {name} | **total{' ' + layer if layer else ''}** | | | **{total:,.2f}** |")
    return "\n".join(lines + totals) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layer", choices=LAYERS)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(args.layer))
        return
    for name in ENVIRONMENTS:
        env = load_env(name)
        by_layer = monthly_by_layer(env)
        parts = ", ".join(f"{k} {v:,.0f}" for k, v in by_layer.items())
        print(f"{name:8s} USD {sum(by_layer.values()):9,.2f}/month  ({parts}); GPU node-hour {gpu_node_hour(env):.3f}")


if __name__ == "__main__":
    main()
