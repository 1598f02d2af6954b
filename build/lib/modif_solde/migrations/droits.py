"""The PostgreSQL side of `modif-solde migrer`: the advisory lock that serialises migrations, and
the application role's rights (read and write its tables, never change the schema)."""

from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.engine import Connection

journal = logging.getLogger("modif_solde.migrations")

# One key for the service's migrations ("modif_so" in ASCII): any other user of advisory locks on
# the same database would have to pick this very number to collide.
VERROU_MIGRATIONS = 0x6D6F6469665F736F


def verrouiller(connexion: Connection) -> None:
    """Held until the migration's transaction ends (commit or rollback, or the connection lost):
    a second `migrer` waits here, then reads the revision the first one left."""
    if connexion.execute(text("SELECT pg_try_advisory_xact_lock(:cle)"), {"cle": VERROU_MIGRATIONS}).scalar():
        return
    journal.warning("une autre migration est en cours sur cette base : attente de sa fin")
    connexion.execute(text("SELECT pg_advisory_xact_lock(:cle)"), {"cle": VERROU_MIGRATIONS})
    journal.info("l'autre migration est finie : reprise")


def _ident(connexion: Connection, nom: str) -> str:
    return str(connexion.execute(text("SELECT quote_ident(:nom)"), {"nom": nom}).scalar())


def accorder(connexion: Connection, role: str, table_version: str) -> list[str]:
    """Grant `role` what the API and the worker need in the current schema, and say what remains
    for the administrator to do. Runs in the migration's transaction, under its lock (two GRANTs at
    once on the same object can fail in PostgreSQL)."""
    proprietaire = str(connexion.execute(text("SELECT current_user")).scalar())
    if role == proprietaire:
        return []
    if not connexion.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar():
        raise ValueError(
            f"le rôle « {role} » de MODIF_SOLDE_DATABASE_URL n'existe pas : créez-le (CREATE ROLE … LOGIN) "
            "avant de lancer la migration"
        )
    schema_brut = str(connexion.execute(text("SELECT current_schema()")).scalar())
    schema, qui, version = (
        _ident(connexion, schema_brut),
        _ident(connexion, role),
        _ident(connexion, table_version),
    )
    for instruction in (
        f"GRANT USAGE ON SCHEMA {schema} TO {qui}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {qui}",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {qui}",
        # The tables and sequences of later migrations, created by this same owner.
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {qui}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {qui}",
        # The application reads the schema's revision; only `migrer` writes it.
        f"REVOKE INSERT, UPDATE, DELETE ON {schema}.{version} FROM {qui}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {qui}",
    ):
        connexion.execute(text(instruction))
    rapport = [
        f"Droits du rôle « {role} » : lecture et écriture des tables et séquences du schéma {schema_brut} "
        f"(et de celles des migrations à venir), sans droit de modifier le schéma."
    ]
    peut_creer = connexion.execute(
        text("SELECT has_schema_privilege(:r, :s, 'CREATE')"), {"r": role, "s": schema_brut}
    ).scalar()
    if peut_creer:
        # PostgreSQL ≤ 14 gives CREATE on `public` to every role (PUBLIC): only the schema's owner can take it back.
        rapport.append(
            f"Attention : le rôle « {role} » peut encore créer des objets dans le schéma {schema_brut} "
            f"(droit accordé à PUBLIC) ; en tant que propriétaire du schéma : "
            f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;"
        )
    return rapport
