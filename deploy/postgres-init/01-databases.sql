-- Run once by the postgres image on an empty data directory: one database per
-- service (each service owns its schema; Alembic creates the tables).
CREATE DATABASE checkout;
CREATE DATABASE trials;
CREATE DATABASE notifications;
