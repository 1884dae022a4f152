-- The developer portal: accounts an operator disabled or made operators,
-- and sign-in sessions. A session row holds the SHA-256 of the cookie's
-- token, never the token.

ALTER TABLE accounts ADD COLUMN disabled_at timestamptz;
ALTER TABLE accounts ADD COLUMN operator boolean NOT NULL DEFAULT false;

CREATE TABLE sessions (
	id          text COLLATE "C" CONSTRAINT sessions_pkey PRIMARY KEY,
	token_hash  text COLLATE "C" NOT NULL CONSTRAINT sessions_token_hash_key UNIQUE CHECK (length(token_hash) = 64),
	account_id  text COLLATE "C" REFERENCES accounts (id),
	root_key_id text COLLATE "C" REFERENCES root_keys (id),
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	revoked_at  timestamptz,
	ip          text        NOT NULL DEFAULT '',
	user_agent  text        NOT NULL DEFAULT '',
	CHECK ((account_id IS NULL) <> (root_key_id IS NULL))
);

CREATE INDEX sessions_account ON sessions (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX sessions_expires ON sessions (expires_at);
