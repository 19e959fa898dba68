-- Switchboard schema, version 2: leases are not written to the WAL.
--
-- A lease only says which worker is working on a conversation right now. Taking, renewing and
-- letting one go were each a transaction waiting for a WAL flush (a disk sync) — as many per
-- turn as the turn's own commits. Unlogged, a transaction that changes only leases commits
-- without a sync. After a crash of the database server the table is empty: every lease is free
-- at once, and two workers may then start the same conversation; versions on every record make
-- the second writer's commit fail before it sends anything, as they do for an expired lease.
ALTER TABLE switchboard_leases SET UNLOGGED;
