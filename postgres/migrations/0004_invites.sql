-- Invitations for --registration invite: one-time codes, stored by the
-- SHA-256 (or peppered HMAC) hex of the code, never the code.

CREATE TABLE invites (
	id         text COLLATE "C" CONSTRAINT invites_pkey PRIMARY KEY,
	note       text        NOT NULL DEFAULT '',
	start      text        NOT NULL,
	hash       text        NOT NULL CONSTRAINT invites_hash_key UNIQUE CHECK (length(hash) = 64),
	created_by text        NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	used_at    timestamptz,
	used_by    text        NOT NULL DEFAULT '',
	revoked_at timestamptz
);
