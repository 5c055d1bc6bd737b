-- What the retention pruner forgets, found by age: idempotency records by when they were made,
-- acknowledged outbox events by when they were acknowledged.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
