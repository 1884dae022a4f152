-- Usage analytics: the rollups also split by route and HTTP status, and
-- keep a latency histogram (keygate.LatencyHistogram, in its compact
-- encoding) that merges across hours, days and instances by adding
-- counts (keygate_hist_add, keygate_hist_sum: Go functions the sqlite
-- package registers). Rows recorded before have route '' and status 0.
-- usage_route_names holds the routes each UTC day admitted, at most
-- keygate.MaxUsageRoutesPerDay; others are counted as '(other)'.

CREATE TABLE usage_rollups_v2 (
	granularity TEXT    NOT NULL CHECK (granularity IN ('hour', 'day')),
	key_id      TEXT    NOT NULL,
	bucket      INTEGER NOT NULL, -- start of the hour or UTC day, Unix milliseconds
	outcome     TEXT    NOT NULL,
	route       TEXT    NOT NULL,
	status      INTEGER NOT NULL,
	account_id  TEXT    NOT NULL,
	count       INTEGER NOT NULL,
	latency     BLOB    NOT NULL DEFAULT x'',
	PRIMARY KEY (granularity, key_id, bucket, outcome, route, status)
) STRICT, WITHOUT ROWID;

INSERT INTO usage_rollups_v2 (granularity, key_id, bucket, outcome, route, status, account_id, count)
	SELECT granularity, key_id, bucket, outcome, '', 0, account_id, count FROM usage_rollups;
DROP TABLE usage_rollups;
ALTER TABLE usage_rollups_v2 RENAME TO usage_rollups;

CREATE INDEX usage_rollups_account ON usage_rollups (granularity, account_id, bucket);
CREATE INDEX usage_rollups_bucket ON usage_rollups (granularity, bucket);

CREATE TABLE usage_route_names (
	day   INTEGER NOT NULL, -- UTC midnight, Unix milliseconds
	route TEXT    NOT NULL,
	PRIMARY KEY (day, route)
) STRICT, WITHOUT ROWID;
