-- The developer portal: accounts an operator disabled or made operators,
-- and sign-in sessions. A session row holds the SHA-256 of the cookie's
-- token, never the token.

ALTER TABLE accounts ADD COLUMN disabled_at INTEGER;
ALTER TABLE accounts ADD COLUMN operator INTEGER NOT NULL DEFAULT 0 CHECK (operator IN (0, 1));

CREATE TABLE sessions (
	id          TEXT    PRIMARY KEY,
	token_hash  TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
	account_id  TEXT    REFERENCES accounts (id),
	root_key_id TEXT    REFERENCES root_keys (id),
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	revoked_at  INTEGER,
	ip          TEXT    NOT NULL DEFAULT '',
	user_agent  TEXT    NOT NULL DEFAULT '',
	CHECK ((account_id IS NULL) <> (root_key_id IS NULL))
) STRICT;

CREATE INDEX sessions_account ON sessions (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);
