-- The checkout saga: an order is placed pending with a deadline and becomes
-- confirmed, rejected, expired or cancelled as events come in; the time its
-- stock was released is recorded.
--
-- SQLite cannot change a CHECK constraint, so the tables are rebuilt. Lines
-- and keys are set aside first: dropping the old orders table then cascades to
-- nothing (foreign keys stay on, and cannot be turned off in a transaction).
--
-- Orders placed before the saga get their creation time as deadline: one
-- still pending expires at the sweeper's next run, which tells products to
-- release its stock.
CREATE TABLE orders_v2 (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'expired', 'cancelled')),
    reason       TEXT NOT NULL DEFAULT '',
    total_amount BIGINT NOT NULL CHECK (total_amount >= 0),
    -- Every line of an order is priced in this currency.
    currency     TEXT NOT NULL,
    deadline     TIMESTAMP NOT NULL,
    released_at  TIMESTAMP,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
INSERT INTO orders_v2 (id, user_id, status, reason, total_amount, currency, deadline, created_at, updated_at)
    SELECT id, user_id, status, reason, total_amount, currency, created_at, created_at, updated_at FROM orders;
CREATE TABLE order_lines_v1 AS SELECT * FROM order_lines;
CREATE TABLE idempotency_keys_v1 AS SELECT * FROM idempotency_keys;
DROP TABLE order_lines;
DROP TABLE idempotency_keys;
DROP TABLE orders;
ALTER TABLE orders_v2 RENAME TO orders;
CREATE INDEX orders_user_id ON orders (user_id, id);
-- The sweeper looks for the few orders left pending.
CREATE INDEX orders_pending ON orders (id) WHERE status = 'pending';

CREATE TABLE order_lines (
    order_id   TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no    INTEGER NOT NULL,
    product_id TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price BIGINT NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (order_id, line_no)
);
INSERT INTO order_lines (order_id, line_no, product_id, quantity, unit_price)
    SELECT order_id, line_no, product_id, quantity, unit_price FROM order_lines_v1;
DROP TABLE order_lines_v1;

CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    order_id     TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);
INSERT INTO idempotency_keys (user_id, key, request_hash, order_id, created_at)
    SELECT user_id, key, request_hash, order_id, created_at FROM idempotency_keys_v1;
DROP TABLE idempotency_keys_v1;
CREATE INDEX idempotency_keys_order_id ON idempotency_keys (order_id);
