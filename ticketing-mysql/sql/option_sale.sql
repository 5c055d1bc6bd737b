-- An option's sale window, read inside a hold's, payment's or cancel's transaction after its
-- seats are loaded (rules decides with it). Not locked itself: a change of the window locks and
-- bumps the option's seats (option_sale_fence.sql), so a command either finishes before the
-- change or reads the new window here (READ COMMITTED: each statement sees the latest commit).
SELECT starts_at, sale_opens_at, sale_closes_at FROM show_options WHERE id = ?
