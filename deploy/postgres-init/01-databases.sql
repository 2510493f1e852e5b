-- Run once by the postgres image on an empty data directory: one database per
-- service (each service owns its schema; Alembic creates the tables), and the
-- experiments' event store, which must be a database of its own.
-- A data volume created before a database was added here does not get it:
--   docker compose -f deploy/compose.yaml --env-file deploy/.env exec postgres createdb -U postgres experiments
CREATE DATABASE checkout;
CREATE DATABASE trials;
CREATE DATABASE notifications;
CREATE DATABASE experiments;
