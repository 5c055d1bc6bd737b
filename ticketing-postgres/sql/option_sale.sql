-- An option's sale window, read inside a hold's or payment's transaction (rules::check_sale
-- decides with it). Not locked: a window changed concurrently orders that change after the
-- command, as if it had been made a moment later.
SELECT starts_at, sale_opens_at, sale_closes_at FROM show_options WHERE id = $1
