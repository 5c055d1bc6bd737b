UPDATE show_options SET sale_opens_at = ?, sale_closes_at = ? WHERE id = ?
