-- Which of these seats are sold, and to which reservation (the settle's last-defence retry).
SELECT seat_id, reservation_id FROM seat_sales WHERE seat_id = ANY($1)
