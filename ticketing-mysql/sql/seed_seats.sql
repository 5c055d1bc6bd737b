INSERT INTO seats (id, option_id, seat_no, grade, price) VALUES {values}
