-- Usage analytics: the rollups also split by route and HTTP status, and
-- keep a latency histogram (keygate.LatencyHistogram: counts per fixed
-- log-scale bucket, dense, trailing zeros dropped) that merges across
-- hours, days and instances by adding counts element by element. Rows
-- recorded before have route '' and status 0. usage_route_names holds the
-- routes each UTC day admitted, at most keygate.MaxUsageRoutesPerDay;
-- others are counted as '(other)'.

ALTER TABLE usage_rollups
	ADD COLUMN route   text COLLATE "C" NOT NULL DEFAULT '',
	ADD COLUMN status  integer NOT NULL DEFAULT 0,
	ADD COLUMN latency bigint[] NOT NULL DEFAULT '{}';

ALTER TABLE usage_rollups
	DROP CONSTRAINT usage_rollups_pkey,
	ADD CONSTRAINT usage_rollups_pkey PRIMARY KEY (granularity, key_id, bucket, outcome, route, status);

CREATE FUNCTION keygate_hist_add(a bigint[], b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT coalesce(array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i), '{}')
	FROM unnest(coalesce(a, '{}'), coalesce(b, '{}')) WITH ORDINALITY AS t(x, y, i)
$$;

CREATE AGGREGATE keygate_hist_sum(bigint[]) (
	SFUNC = keygate_hist_add,
	STYPE = bigint[],
	INITCOND = '{}'
);

CREATE TABLE usage_route_names (
	day   timestamptz NOT NULL, -- UTC midnight
	route text COLLATE "C" NOT NULL,
	CONSTRAINT usage_route_names_pkey PRIMARY KEY (day, route)
);
