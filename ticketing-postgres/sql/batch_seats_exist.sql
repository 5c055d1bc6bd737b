-- Which of these seats exist (to tell a skipped seat from an unknown one).
SELECT id FROM seats WHERE id = ANY($1)
