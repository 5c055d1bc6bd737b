-- Found by review and measured (BENCHMARKS.md):
-- 1. The foreign key reservations.option_id -> show_options made every hold take a FOR KEY SHARE
--    lock on its one option row (a multixact once two holds overlap). A reservation's option is
--    checked by the store instead: every seat of a hold must be of the option, and seats
--    reference show_options.
ALTER TABLE reservations DROP CONSTRAINT IF EXISTS reservations_option_id_fkey;
-- 2. A cancel deletes the sales of one reservation: without an index that scanned seat_sales.
CREATE INDEX IF NOT EXISTS seat_sales_reservation ON seat_sales (reservation_id);
