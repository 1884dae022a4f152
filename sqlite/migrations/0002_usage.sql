-- Usage: raw events, kept for the configured retention, and hourly and
-- daily rollups per key and outcome, kept for good.

CREATE TABLE usage_events (
	id         INTEGER PRIMARY KEY,
	time       INTEGER NOT NULL,            -- Unix milliseconds
	key_id     TEXT    NOT NULL DEFAULT '', -- '' when no key was found
	account_id TEXT    NOT NULL DEFAULT '',
	outcome    TEXT    NOT NULL,
	method     TEXT    NOT NULL DEFAULT '',
	route      TEXT    NOT NULL DEFAULT '',
	status     INTEGER NOT NULL DEFAULT 0,
	latency_us INTEGER NOT NULL DEFAULT 0,
	ip         TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX usage_events_time ON usage_events (time);
-- Raw events are read by key or by time; a query by account scans the
-- time range, which keeps every insert one index lighter.
CREATE INDEX usage_events_key ON usage_events (key_id, time) WHERE key_id <> '';

CREATE TABLE usage_rollups (
	granularity TEXT    NOT NULL CHECK (granularity IN ('hour', 'day')),
	key_id      TEXT    NOT NULL,
	bucket      INTEGER NOT NULL, -- start of the hour or UTC day, Unix milliseconds
	outcome     TEXT    NOT NULL,
	account_id  TEXT    NOT NULL,
	count       INTEGER NOT NULL,
	PRIMARY KEY (granularity, key_id, bucket, outcome)
) STRICT, WITHOUT ROWID;

CREATE INDEX usage_rollups_account ON usage_rollups (granularity, account_id, bucket);
CREATE INDEX usage_rollups_bucket ON usage_rollups (granularity, bucket);
