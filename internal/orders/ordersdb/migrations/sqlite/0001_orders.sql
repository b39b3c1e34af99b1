CREATE TABLE orders (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected')),
    reason       TEXT NOT NULL DEFAULT '',
    total_amount BIGINT NOT NULL CHECK (total_amount >= 0),
    -- Every line of an order is priced in this currency.
    currency     TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
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

CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    order_id     TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_order_id ON idempotency_keys (order_id);
