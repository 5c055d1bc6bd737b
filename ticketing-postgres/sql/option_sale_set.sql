UPDATE show_options SET sale_opens_at = $2, sale_closes_at = $3 WHERE id = $1
RETURNING id, concert_id, starts_at, sale_opens_at, sale_closes_at
