-- Finding what changed since a moment (Store.ChangedSince), which
-- instances sharing the database poll to catch up with each other.
CREATE INDEX keys_updated_at ON keys (updated_at);
CREATE INDEX accounts_updated_at ON accounts (updated_at);
