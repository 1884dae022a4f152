-- The initial schema. Times are integer Unix milliseconds (UTC); JSON is
-- stored as text; key hashes as their 32 bytes. Tables are STRICT so that
-- a value of the wrong type is an error rather than a silent conversion.

CREATE TABLE tiers (
	name            TEXT    PRIMARY KEY,
	quota_per_day   INTEGER NOT NULL,
	rate_per_second REAL    NOT NULL,
	burst           INTEGER NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE accounts (
	id            TEXT    PRIMARY KEY,
	name          TEXT    NOT NULL,
	email         TEXT    NOT NULL UNIQUE CHECK (email = lower(email)),
	tier          TEXT    NOT NULL REFERENCES tiers (name),
	password_hash TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
) STRICT;

CREATE INDEX accounts_tier ON accounts (tier, id);

CREATE TABLE keys (
	id              TEXT    PRIMARY KEY,
	account_id      TEXT    NOT NULL REFERENCES accounts (id),
	name            TEXT    NOT NULL,
	env             TEXT    NOT NULL CHECK (env IN ('live', 'test')),
	start           TEXT    NOT NULL,
	last4           TEXT    NOT NULL,
	hash            BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32), -- SHA-256
	hash_alg        TEXT    NOT NULL CHECK (hash_alg IN ('keygate', 'sha256')),
	tier            TEXT    REFERENCES tiers (name), -- NULL: the account's tier
	quota_per_day   INTEGER,                         -- NULL: the tier's value
	rate_per_second REAL,
	burst           INTEGER,
	scopes          TEXT    NOT NULL DEFAULT '[]',
	ip_allow        TEXT    NOT NULL DEFAULT '[]',
	meta            TEXT,
	expires_at      INTEGER,
	enabled         INTEGER NOT NULL,
	revoked_at      INTEGER,
	revoked_reason  TEXT    NOT NULL DEFAULT '',
	revoked_by      TEXT    NOT NULL DEFAULT '',
	replaced_by     TEXT    NOT NULL DEFAULT '',
	replaces        TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	last_used_at    INTEGER
) STRICT;

-- Listing an account's keys, page by page, and the account foreign key.
CREATE INDEX keys_account ON keys (account_id, id);
-- Listing a tier's keys and refusing to delete a tier in use. Most keys
-- inherit their account's tier, so the index leaves them out.
CREATE INDEX keys_tier ON keys (tier, id) WHERE tier IS NOT NULL;

CREATE TABLE root_keys (
	id          TEXT    PRIMARY KEY,
	name        TEXT    NOT NULL,
	start       TEXT    NOT NULL,
	last4       TEXT    NOT NULL,
	hash        BLOB    NOT NULL UNIQUE CHECK (length(hash) = 32),
	permissions TEXT    NOT NULL DEFAULT '[]',
	created_at  INTEGER NOT NULL,
	revoked_at  INTEGER
) STRICT;

CREATE TABLE audit_events (
	id          TEXT    PRIMARY KEY,
	time        INTEGER NOT NULL,
	actor       TEXT    NOT NULL,
	action      TEXT    NOT NULL,
	target_type TEXT    NOT NULL,
	target_id   TEXT    NOT NULL,
	details     TEXT
) STRICT;

CREATE INDEX audit_events_time ON audit_events (time, id);
CREATE INDEX audit_events_target ON audit_events (target_type, target_id, time, id);
CREATE INDEX audit_events_actor ON audit_events (actor, time, id);

CREATE TABLE counters (
	key_id TEXT    NOT NULL,
	day    TEXT    NOT NULL, -- a UTC day, 2006-01-02
	count  INTEGER NOT NULL,
	PRIMARY KEY (key_id, day)
) STRICT, WITHOUT ROWID;

CREATE INDEX counters_day ON counters (day);
