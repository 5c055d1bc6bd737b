-- Seats are written in place over and over (held, sold, released): leave a tenth of each page
-- free so that an update can put the new row version on the same page (a HOT update, which
-- writes no index entry). Measured (issue 11, holds only on 200k seats): with full pages 21 % of
-- the seat updates were not HOT, each writing two index entries (seats_pkey, seats_option).
-- Seats inserted from now on are laid out so; a table seeded before keeps its pages until it
-- is rewritten (VACUUM FULL).
ALTER TABLE seats SET (fillfactor = 90);
