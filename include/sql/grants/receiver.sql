-- PostgreSQL rights of the callback receiver's role (wecom_receiver): the least an
-- internet-facing service needs. It inserts events and counts redeliveries; it
-- cannot read payloads back, change an event's status or touch any other table.
-- Run as the owner of wecom_callback_events (the DAG role, once the first sync has
-- created the tables) after the DBA created the role with a password and LOGIN;
-- rename wecom_receiver if yours is called otherwise. The receiver checks these
-- rights at startup and names the first one missing.
-- CONNECT on the database is PostgreSQL's default for every role (PUBLIC).
GRANT USAGE ON SCHEMA public TO wecom_receiver;
GRANT INSERT ON wecom_callback_events TO wecom_receiver;
GRANT SELECT (event_id, corp_id, dedup_key, delivery_count) ON wecom_callback_events TO wecom_receiver;
GRANT UPDATE (delivery_count, last_received_at) ON wecom_callback_events TO wecom_receiver;
