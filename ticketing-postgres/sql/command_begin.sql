-- A per-command transaction. Every statement of a command is a lookup or a write by key, so:
-- - plan_cache_mode = force_generic_plan: PostgreSQL would otherwise plan most of them again on
--   every execution (a custom plan for each set of parameters, because the generic plan's
--   estimate for `= ANY($1)` looks worse): 17.6% of PostgreSQL's time was in the planner in a
--   per-command hold rush, 2.4% with generic plans;
-- - enable_seqscan = off: a generic plan made while the tables are small (a fresh schema at the
--   start of a sale) would otherwise be a sequential scan, cached as the tables grow (see
--   batch_begin.sql).
BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off
