-- Run once by the postgres image, when its data volume is empty (docker-entrypoint-initdb.d).
-- The image itself creates the role and database of POSTGRES_USER / POSTGRES_DB ("airflow"):
-- Airflow's metadata database and the Celery result backend. This adds the warehouse.
--
-- The warehouse has a role of its own, so tasks, which reach it through the llm_source and
-- llm_warehouse connections, get no credentials for the metadata database. The password is
-- the local default that docker-compose.yaml's connections use; change both together (or
-- `ALTER ROLE warehouse PASSWORD ...` on a running server) for anything but a laptop.
CREATE ROLE warehouse LOGIN PASSWORD 'warehouse';
CREATE DATABASE warehouse OWNER warehouse;
