-- The transactional outbox: events written in the same transaction as the
-- state change they announce, published by the relay in seq order.
CREATE TABLE outbox (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,  -- the event id, also its Nats-Msg-Id
    source         TEXT NOT NULL,
    type           TEXT NOT NULL,         -- also the NATS subject
    aggregate      TEXT NOT NULL,         -- the event's subject: the aggregate id
    event_time     TEXT NOT NULL,         -- RFC 3339, nanoseconds, UTC: kept exactly
    schema_version TEXT NOT NULL,
    traceparent    TEXT NOT NULL DEFAULT '',
    payload        BLOB NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    sent_at        TIMESTAMP
);
-- The relay reads the few pending rows in seq order.
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- The inbox: the events each consumer has applied, recorded in the same
-- transaction as their effect.
CREATE TABLE inbox (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
