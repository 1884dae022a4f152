-- Webhooks: endpoints, and the outbox of events and their deliveries. An
-- event is stored, with one delivery per subscribed endpoint, in the
-- transaction of the change that raised it.

CREATE TABLE webhook_endpoints (
	id          TEXT    PRIMARY KEY,
	url         TEXT    NOT NULL,
	events      TEXT    NOT NULL DEFAULT '[]', -- JSON array of event types
	description TEXT    NOT NULL DEFAULT '',
	enabled     INTEGER NOT NULL,
	secret      TEXT    NOT NULL,               -- whsec_…: needed to sign, so kept as is
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE webhook_events (
	id      TEXT    PRIMARY KEY, -- msg_…, the webhook-id header
	type    TEXT    NOT NULL,
	time    INTEGER NOT NULL,
	payload TEXT    NOT NULL
) STRICT;

CREATE TABLE webhook_deliveries (
	id              TEXT    PRIMARY KEY,
	endpoint_id     TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
	event_id        TEXT    NOT NULL REFERENCES webhook_events (id),
	event_type      TEXT    NOT NULL,
	status          TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL,
	next_attempt_at INTEGER,          -- NULL unless pending
	locked_until    INTEGER NOT NULL DEFAULT 0, -- a claimer's lease
	give_up_at      INTEGER NOT NULL,
	last_attempt_at INTEGER,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	delivered_at    INTEGER,
	UNIQUE (endpoint_id, event_id)
) STRICT;

-- The dispatcher's claim: pending deliveries by due time.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
-- An endpoint's delivery log, newest first.
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

-- Expiry warnings look keys up by expiry.
CREATE INDEX keys_expires ON keys (expires_at) WHERE expires_at IS NOT NULL;
