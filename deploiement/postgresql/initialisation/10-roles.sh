#!/bin/sh
# The roles and databases of docker-compose.yml, created by the postgres image on the first start
# of an empty volume (docs/production.md, « docker-compose »), each password read from its compose secret:
#   modif_solde      owns the service's database and its schema: `modif-solde migrer` only;
#   modif_solde_app  the API and the worker: reads and writes the tables (granted by `migrer`),
#                    cannot create or alter anything;
#   temporal         owns Temporal's two databases, nothing else.
set -eu

secret() { tr -d '\n' < "/run/secrets/$1"; }

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v proprietaire="$(secret pg-proprietaire)" \
    -v application="$(secret pg-application)" \
    -v temporal="$(secret pg-temporal)" <<'SQL'
CREATE ROLE modif_solde LOGIN PASSWORD :'proprietaire';
CREATE ROLE modif_solde_app LOGIN PASSWORD :'application';
CREATE ROLE temporal LOGIN PASSWORD :'temporal';

CREATE DATABASE modif_solde OWNER modif_solde;
REVOKE ALL ON DATABASE modif_solde FROM PUBLIC;
GRANT CONNECT ON DATABASE modif_solde TO modif_solde_app;

CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
REVOKE ALL ON DATABASE temporal, temporal_visibility FROM PUBLIC;

\connect modif_solde
-- The schema belongs to the owner; nobody else may create in it.
ALTER SCHEMA public OWNER TO modif_solde;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO modif_solde_app;
SQL
