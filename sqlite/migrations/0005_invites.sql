-- Invitations for --registration invite: one-time codes, stored by the
-- SHA-256 (or peppered HMAC) hex of the code, never the code.

CREATE TABLE invites (
	id         TEXT    PRIMARY KEY,
	note       TEXT    NOT NULL DEFAULT '',
	start      TEXT    NOT NULL,
	hash       TEXT    NOT NULL UNIQUE CHECK (length(hash) = 64),
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER,
	used_by    TEXT    NOT NULL DEFAULT '',
	revoked_at INTEGER
) STRICT;
