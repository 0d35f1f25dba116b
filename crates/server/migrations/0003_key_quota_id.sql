-- A rotated key spends its predecessor's daily quota: `quota_id` is the id of the first key of
-- its rotation chain, whose counter every successor shares. NULL: the key's own id (every key
-- created before this migration, and every key that was never rotated into).
ALTER TABLE api_keys ADD COLUMN quota_id TEXT NULL;
