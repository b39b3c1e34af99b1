CREATE TABLE products (
    id             TEXT PRIMARY KEY,
    sku            TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    price_amount   BIGINT NOT NULL CHECK (price_amount >= 0),
    price_currency TEXT NOT NULL,
    -- Units available to reserve now. The CHECK is the last line of defence
    -- against overselling; reservations decrement it conditionally.
    stock          INTEGER NOT NULL CHECK (stock >= 0),
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- The units held for an order, one row per product; releasing the order
-- deletes its rows and gives the units back to products.stock.
CREATE TABLE reservations (
    order_id   TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- One row per order that ever reserved or released stock. Reserve and Release
-- both write this row first, so on PostgreSQL they queue on its key and never
-- interleave; and a released order stays released: a reservation request that
-- arrives late (after a timeout made orders give up and release) is refused
-- instead of holding stock for an order that no longer exists.
CREATE TABLE reservation_orders (
    order_id   TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('reserved', 'released')),
    updated_at TIMESTAMPTZ NOT NULL
);
