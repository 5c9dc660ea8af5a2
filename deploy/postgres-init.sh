#!/bin/sh
# docker-compose.yaml: PostgreSQL's first start creates Pay's role and database beside Dagster's.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v pay_password="$PAY_PG_PASSWORD" <<'SQL'
CREATE ROLE pay LOGIN PASSWORD :'pay_password';
CREATE DATABASE pay OWNER pay;
SQL
