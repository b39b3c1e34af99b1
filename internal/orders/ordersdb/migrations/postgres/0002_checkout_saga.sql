-- The checkout saga: an order is placed pending with a deadline and becomes
-- confirmed, rejected, expired or cancelled as events come in; the time its
-- stock was released is recorded.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'confirmed', 'rejected', 'expired', 'cancelled'));
-- Orders placed before the saga get their creation time as deadline: one
-- still pending expires at the sweeper's next run, which tells products to
-- release its stock.
ALTER TABLE orders ADD COLUMN deadline TIMESTAMPTZ;
UPDATE orders SET deadline = created_at;
ALTER TABLE orders ALTER COLUMN deadline SET NOT NULL;
ALTER TABLE orders ADD COLUMN released_at TIMESTAMPTZ;
