CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'admin')),
    -- Filled by the authentication feature; NULL means the account cannot log in.
    password_hash TEXT,
    created_at    TIMESTAMP NOT NULL
);
