#!/bin/sh
# Runs once, when the Postgres volume is new: Metabase's application database, kept apart
# from the warehouse in the same server, owned by its own login.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE metabase LOGIN PASSWORD '${MB_DB_PASS}';
CREATE DATABASE metabase OWNER metabase;
SQL
