-- Stock accounting for the checkout saga. products.stock stays the units
-- available now; every unit taken from it is in reservations, either held for
-- an order ('reserved') or bought by it ('sold', once the order is
-- confirmed). So, per product, at every commit:
--
--     units stocked = products.stock + reserved + sold
--
-- where units stocked changes only when an admin sets the stock. Releasing an
-- order (cancelled, expired, or released by orders) deletes its rows, reserved
-- or sold, and gives their units back to products.stock.
--
-- reservation_orders.status keeps its meaning: 'reserved' while the order
-- holds or has bought stock, 'released' once it was released (final).
ALTER TABLE reservations ADD COLUMN status TEXT NOT NULL DEFAULT 'reserved'
    CHECK (status IN ('reserved', 'sold'));

-- Stock levels add up each product's reservations.
CREATE INDEX reservations_product ON reservations (product_id, status);
