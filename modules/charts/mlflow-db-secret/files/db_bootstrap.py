"""Create or update MLflow's own database role (not the RDS master) and hand it MLflow's databases.

Run by the `mlflow-db-bootstrap` Job (modules/database_bootstrap.py) as the master user, before MLflow starts and on
every upgrade; idempotent. Reads libpq's own variables for the server and TLS (PGHOST, PGPORT, PGSSLMODE,
PGSSLROOTCERT) and:
  MASTER_USER, MASTER_PASSWORD  the RDS master credential (only this Job's pod sees it)
  APP_USER, APP_PASSWORD        the role MLflow connects as (its password from Secrets Manager)
  DATABASES                     comma-separated: the backend store and the auth app's database
Only psycopg2 and the standard library: it runs in MLflow's own image.
"""

from __future__ import annotations

import os
import sys

import psycopg2
from psycopg2 import sql


def _connect(dbname: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(dbname=dbname, user=os.environ["MASTER_USER"], password=os.environ["MASTER_PASSWORD"])
    conn.autocommit = True
    return conn


def ensure_role(cur: psycopg2.extensions.cursor, role: str, password: str) -> str:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    verb = "ALTER" if cur.fetchone() else "CREATE"
    # LOGIN only: no CREATEDB, no CREATEROLE, no superuser; the password is sent as a parameter, never logged.
    cur.execute(
        sql.SQL(verb + " ROLE {} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD %s").format(sql.Identifier(role)),
        (password,),
    )
    return "created" if verb == "CREATE" else "updated"


def ensure_database(cur: psycopg2.extensions.cursor, database: str, owner: str) -> None:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
    if not cur.fetchone():
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
    cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(owner)))


def hand_over(database: str, owner: str, master: str) -> int:
    """Inside `database`: the schema and every table, sequence and view the master created (an environment that
    ran MLflow as the master before) become the app role's, so its migrations can alter them. Objects of other
    roles are left alone. Returns how many objects changed owner."""
    conn = _connect(database)  # not `with conn`: that opens a transaction even in autocommit mode
    with conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(owner)))
        cur.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm') "
            "AND pg_get_userbyid(c.relowner) = %s "
            # A serial's sequence follows its table (changing it alone is refused).
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid "
            "AND d.deptype IN ('a', 'i'))",
            (master,),
        )
        rows = cur.fetchall()
        kinds = {"r": "TABLE", "p": "TABLE", "S": "SEQUENCE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
        for name, kind in rows:
            stmt = "ALTER " + kinds[kind] + " public.{} OWNER TO {}"
            cur.execute(sql.SQL(stmt).format(sql.Identifier(name), sql.Identifier(owner)))
    conn.close()
    return len(rows)


def main() -> int:
    master, app = os.environ["MASTER_USER"], os.environ["APP_USER"]
    if app == master:
        print(f"APP_USER must not be the master user {master!r}", file=sys.stderr)
        return 2
    databases = [d for d in os.environ["DATABASES"].split(",") if d]
    conn = _connect("postgres")
    with conn.cursor() as cur:
        done = ensure_role(cur, app, os.environ["APP_PASSWORD"])
        # RDS's master is no superuser: it may give a database away only while it is a member of the new owner.
        cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(app), sql.Identifier(master)))
        for database in databases:
            ensure_database(cur, database, app)
    conn.close()
    moved = sum(hand_over(d, app, master) for d in databases)
    print(f"role {app} {done}; owns {', '.join(databases)}; {moved} objects handed over from {master}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
