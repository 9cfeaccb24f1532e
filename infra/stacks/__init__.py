"""One stack per layer per environment: network -> cluster -> data -> addons."""

LAYERS: tuple[str, ...] = ("network", "cluster", "data", "addons")
AWS_LAYERS: tuple[str, ...] = ("network", "cluster", "data")
