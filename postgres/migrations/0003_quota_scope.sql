-- Quotas counted per account or per key, and rotation lineages.
--
-- tiers.quota_scope: 'account' counts the requests of all of an account's
-- keys together (the default, also for the tiers that exist already, so
-- that making more keys no longer multiplies a quota); 'key' counts each
-- key on its own.
--
-- keys.lineage_id: the first key of a key's rotation chain; '' for a key
-- that replaced none. A rotated key's counters continue under it. Chains
-- rotated before this migration are linked here.

ALTER TABLE tiers ADD COLUMN quota_scope text NOT NULL DEFAULT 'account'
	CHECK (quota_scope IN ('account', 'key'));

ALTER TABLE keys ADD COLUMN lineage_id text NOT NULL DEFAULT '';

WITH RECURSIVE chain (id, root) AS (
	SELECT id, id FROM keys WHERE replaces = ''
	UNION ALL
	SELECT k.id, c.root FROM keys k JOIN chain c ON k.replaces = c.id
)
UPDATE keys SET lineage_id = chain.root FROM chain
WHERE keys.id = chain.id AND keys.replaces <> '';
