"""Exec a server with secrets in its environment, read from the local secret store at start.

Supervisor config files and process lists then hold only secret *names*:
    python -m infra.local.exec_with_secrets --env 'PGPASS={postgres_password}' -- cmd args...
"""

from __future__ import annotations

import os
import string
import sys

from infra.local.secrets import get_secret


def render(template: str) -> str:
    names = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    return template.format(**{name: get_secret(name) for name in names})


def main(argv: list[str]) -> None:
    if "--" not in argv:
        sys.exit("usage: exec_with_secrets --env NAME=TEMPLATE ... -- command [args]")
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    env = dict(os.environ)
    for i in range(0, len(options), 2):
        if options[i] != "--env" or i + 1 >= len(options) or "=" not in options[i + 1]:
            sys.exit(f"exec_with_secrets: expected --env NAME=TEMPLATE, got {options[i : i + 2]}")
        name, template = options[i + 1].split("=", 1)
        env[name] = render(template)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
