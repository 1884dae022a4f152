-- Hourly request counts per route and outcome, for every request: the
-- only record of anonymous and throttled requests, which are not stored
-- as raw events.

CREATE TABLE usage_routes (
	bucket  INTEGER NOT NULL, -- start of the hour, Unix milliseconds
	route   TEXT    NOT NULL,
	outcome TEXT    NOT NULL,
	count   INTEGER NOT NULL,
	PRIMARY KEY (bucket, route, outcome)
) STRICT, WITHOUT ROWID;
