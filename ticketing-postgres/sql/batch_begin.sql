-- A batch's transaction. Every statement of a batch is an index lookup or a write by key; the
-- planner must never pick a sequential scan for them. It would, for a cached generic plan made
-- while a table was still small (a fresh schema at the start of a rush): that plan stays cached
-- as the table grows (measured: 3,478 sequential scans reading 25.8 million rows of
-- reservations in one 8-second rush, 2.6x fewer holds per second than with this setting).
-- Generic plans too, as for a per-command transaction (command_begin.sql): no planning on every
-- execution of the write statement.
BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL plan_cache_mode = force_generic_plan
