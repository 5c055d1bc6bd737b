-- Forget the events outbox_prune.sql locked (the ids list: their seqs).
DELETE FROM outbox WHERE seq IN ({ids})
