-- Webhooks: endpoints, and the outbox of events and their deliveries. An
-- event is stored, with one delivery per subscribed endpoint, in the
-- transaction of the change that raised it. Instances claim due
-- deliveries with FOR UPDATE SKIP LOCKED and a lease (locked_until).

CREATE TABLE webhook_endpoints (
	id          text COLLATE "C" CONSTRAINT webhook_endpoints_pkey PRIMARY KEY,
	url         text        NOT NULL,
	events      text[]      NOT NULL DEFAULT '{}',
	description text        NOT NULL DEFAULT '',
	enabled     boolean     NOT NULL,
	secret      text        NOT NULL, -- whsec_…: needed to sign, so kept as is
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);

CREATE TABLE webhook_events (
	id      text COLLATE "C" CONSTRAINT webhook_events_pkey PRIMARY KEY, -- msg_…, the webhook-id header
	type    text        NOT NULL,
	time    timestamptz NOT NULL,
	payload text        NOT NULL
);

CREATE TABLE webhook_deliveries (
	id              text COLLATE "C" CONSTRAINT webhook_deliveries_pkey PRIMARY KEY,
	endpoint_id     text COLLATE "C" NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
	event_id        text COLLATE "C" NOT NULL REFERENCES webhook_events (id),
	event_type      text        NOT NULL,
	status          text        NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
	attempts        integer     NOT NULL DEFAULT 0,
	created_at      timestamptz NOT NULL,
	next_attempt_at timestamptz,                      -- NULL unless pending
	locked_until    timestamptz NOT NULL DEFAULT '-infinity', -- a claimer's lease
	give_up_at      timestamptz NOT NULL,
	last_attempt_at timestamptz,
	last_status     integer     NOT NULL DEFAULT 0,
	last_error      text        NOT NULL DEFAULT '',
	delivered_at    timestamptz,
	UNIQUE (endpoint_id, event_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);

CREATE INDEX keys_expires ON keys (expires_at) WHERE expires_at IS NOT NULL;
