-- Hourly request counts per route and outcome, for every request: the
-- only record of anonymous and throttled requests, which are not stored
-- as raw events.

CREATE TABLE usage_routes (
	bucket  timestamptz NOT NULL, -- start of the hour
	route   text COLLATE "C" NOT NULL,
	outcome text COLLATE "C" NOT NULL,
	count   bigint      NOT NULL,
	CONSTRAINT usage_routes_pkey PRIMARY KEY (bucket, route, outcome)
);
