-- The initial schema. Times are timestamptz, stored to the millisecond as
-- keygate's SQLite store keeps them; key and root key hashes are their 32
-- bytes; JSON is kept as sent (json, not jsonb, so it comes back unchanged).
-- Identifiers and names use the "C" collation, so that ID order (creation
-- order) and cursors are byte order whatever the database's locale.

CREATE TABLE tiers (
	name            text COLLATE "C" CONSTRAINT tiers_pkey PRIMARY KEY,
	quota_per_day   bigint           NOT NULL,
	rate_per_second double precision NOT NULL,
	burst           bigint           NOT NULL,
	created_at      timestamptz      NOT NULL,
	updated_at      timestamptz      NOT NULL
);

CREATE TABLE accounts (
	id            text COLLATE "C" CONSTRAINT accounts_pkey PRIMARY KEY,
	name          text        NOT NULL,
	email         text COLLATE "C" NOT NULL CONSTRAINT accounts_email_key UNIQUE CHECK (email = lower(email)),
	tier          text COLLATE "C" NOT NULL CONSTRAINT accounts_tier_fkey REFERENCES tiers (name),
	password_hash text        NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL
);

CREATE INDEX accounts_tier ON accounts (tier, id);

CREATE TABLE keys (
	id              text COLLATE "C" CONSTRAINT keys_pkey PRIMARY KEY,
	account_id      text COLLATE "C" NOT NULL CONSTRAINT keys_account_fkey REFERENCES accounts (id),
	name            text        NOT NULL,
	env             text        NOT NULL CHECK (env IN ('live', 'test')),
	start           text        NOT NULL,
	last4           text        NOT NULL,
	hash            bytea       NOT NULL CONSTRAINT keys_hash_key UNIQUE CHECK (length(hash) = 32), -- SHA-256
	hash_alg        text        NOT NULL CHECK (hash_alg IN ('keygate', 'sha256')),
	tier            text COLLATE "C" CONSTRAINT keys_tier_fkey REFERENCES tiers (name), -- NULL: the account's tier
	quota_per_day   bigint,                                                            -- NULL: the tier's value
	rate_per_second double precision,
	burst           bigint,
	scopes          text[]      NOT NULL DEFAULT '{}',
	ip_allow        text[]      NOT NULL DEFAULT '{}',
	meta            json,
	expires_at      timestamptz,
	enabled         boolean     NOT NULL,
	revoked_at      timestamptz,
	revoked_reason  text        NOT NULL DEFAULT '',
	revoked_by      text        NOT NULL DEFAULT '',
	replaced_by     text        NOT NULL DEFAULT '',
	replaces        text        NOT NULL DEFAULT '',
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	last_used_at    timestamptz
);

-- Listing an account's keys, page by page, and the account foreign key.
CREATE INDEX keys_account ON keys (account_id, id);
-- Listing a tier's keys and refusing to delete a tier in use. Most keys
-- inherit their account's tier, so the index leaves them out.
CREATE INDEX keys_tier ON keys (tier, id) WHERE tier IS NOT NULL;

CREATE TABLE root_keys (
	id          text COLLATE "C" CONSTRAINT root_keys_pkey PRIMARY KEY,
	name        text        NOT NULL,
	start       text        NOT NULL,
	last4       text        NOT NULL,
	hash        bytea       NOT NULL CONSTRAINT root_keys_hash_key UNIQUE CHECK (length(hash) = 32),
	permissions text[]      NOT NULL DEFAULT '{}',
	created_at  timestamptz NOT NULL,
	revoked_at  timestamptz
);

CREATE TABLE audit_events (
	id          text COLLATE "C" CONSTRAINT audit_events_pkey PRIMARY KEY,
	time        timestamptz NOT NULL,
	actor       text        NOT NULL,
	action      text        NOT NULL,
	target_type text        NOT NULL,
	target_id   text        NOT NULL,
	details     json
);

CREATE INDEX audit_events_time ON audit_events (time, id);
CREATE INDEX audit_events_target ON audit_events (target_type, target_id, time, id);
CREATE INDEX audit_events_actor ON audit_events (actor, time, id);

CREATE TABLE counters (
	key_id text COLLATE "C" NOT NULL,
	day    text COLLATE "C" NOT NULL, -- a UTC day, 2006-01-02
	count  bigint NOT NULL,
	CONSTRAINT counters_pkey PRIMARY KEY (key_id, day)
);

CREATE INDEX counters_day ON counters (day);

-- Usage: raw events, kept for the configured retention and pruned by
-- time, and hourly and daily rollups per key and outcome, kept for good.

CREATE TABLE usage_events (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time       timestamptz NOT NULL,
	key_id     text COLLATE "C" NOT NULL DEFAULT '', -- '' when no key was found
	account_id text COLLATE "C" NOT NULL DEFAULT '',
	outcome    text        NOT NULL,
	method     text        NOT NULL DEFAULT '',
	route      text        NOT NULL DEFAULT '',
	status     integer     NOT NULL DEFAULT 0,
	latency_us bigint      NOT NULL DEFAULT 0,
	ip         text        NOT NULL DEFAULT ''
);

CREATE INDEX usage_events_time ON usage_events (time);
CREATE INDEX usage_events_key ON usage_events (key_id, time) WHERE key_id <> '';

CREATE TABLE usage_rollups (
	granularity text COLLATE "C" NOT NULL CHECK (granularity IN ('hour', 'day')),
	key_id      text COLLATE "C" NOT NULL,
	bucket      timestamptz NOT NULL, -- start of the hour or UTC day
	outcome     text COLLATE "C" NOT NULL,
	account_id  text COLLATE "C" NOT NULL,
	count       bigint      NOT NULL,
	CONSTRAINT usage_rollups_pkey PRIMARY KEY (granularity, key_id, bucket, outcome)
);

CREATE INDEX usage_rollups_account ON usage_rollups (granularity, account_id, bucket);
CREATE INDEX usage_rollups_bucket ON usage_rollups (granularity, bucket);
