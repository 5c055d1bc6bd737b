-- Which of these seats are sold, and to which reservation (the settle's last-defence retry). The
-- ids list is padded by repeating its last id.
SELECT seat_id, reservation_id FROM seat_sales WHERE seat_id IN ({ids})
