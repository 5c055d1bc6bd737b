-- The database's clock at this instant (not the transaction's start).
SELECT clock_timestamp()
