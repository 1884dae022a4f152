-- Keys are found by their start (as displayed: prefix, env and the first
-- 4 secret characters) in the portal's admin pages.

CREATE INDEX keys_start ON keys (start);
