-- The transactional outbox: events written in the same transaction as the
-- state change they announce, published by the relay in seq order.
CREATE TABLE outbox (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,  -- the event id, also its Nats-Msg-Id
    source         TEXT NOT NULL,
    type           TEXT NOT NULL,         -- also the NATS subject
    aggregate      TEXT NOT NULL,         -- the event's subject: the aggregate id
    event_time     TEXT NOT NULL,         -- RFC 3339, nanoseconds, UTC: kept exactly
    schema_version TEXT NOT NULL,
    traceparent    TEXT NOT NULL DEFAULT '',
    payload        BYTEA NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    sent_at        TIMESTAMPTZ
);
-- The relay reads the few pending rows in seq order.
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;

-- The inbox: the events each consumer has applied, recorded in the same
-- transaction as their effect.
CREATE TABLE inbox (
    consumer     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_processed_at ON inbox (processed_at);
