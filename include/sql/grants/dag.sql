-- PostgreSQL rights of the DAGs' role (wecom_dag): the full sync, the callback
-- apply DAG and the status page. The DAGs create and upgrade their own tables
-- (CREATE TABLE / INDEX IF NOT EXISTS, ADD COLUMN) before every sync, so this role
-- owns them and needs no grant per table; it also stages snapshots in temporary
-- tables, which PostgreSQL allows every role by default (TEMPORARY and CONNECT on
-- the database go to PUBLIC unless a DBA revoked them).
-- Run as the database owner or a superuser after creating the role with a password
-- and LOGIN; rename wecom_dag if yours is called otherwise. Then, as wecom_dag after
-- its first sync, run receiver.sql to let the receiver's role insert events.
GRANT USAGE, CREATE ON SCHEMA public TO wecom_dag;
