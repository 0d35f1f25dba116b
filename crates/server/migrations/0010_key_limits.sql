-- Per-key limits beside the daily quota (all NULL: none, as for every key created before):
-- a rate limit (GCRA: `rate_limit` calls per `rate_period`, at most `rate_burst` at once), a
-- monthly quota (calls per UTC calendar month), and credits: a balance of uses, granted at
-- `credits_set_at` (unix seconds; the generation the spending is counted under), that a refill
-- sets to `credits_refill` at the start of each UTC `credits_interval`.
ALTER TABLE api_keys ADD COLUMN rate_limit BIGINT NULL;      -- calls per rate_period; NULL: no rate limit
ALTER TABLE api_keys ADD COLUMN rate_period TEXT NULL;       -- 'second' | 'minute' | 'hour' | 'day'
ALTER TABLE api_keys ADD COLUMN rate_burst BIGINT NULL;      -- most at once; NULL: rate_limit
ALTER TABLE api_keys ADD COLUMN monthly_quota BIGINT NULL;   -- calls per UTC calendar month; NULL: none
ALTER TABLE api_keys ADD COLUMN credits BIGINT NULL;         -- the balance granted at credits_set_at; NULL: no credits (unlimited)
ALTER TABLE api_keys ADD COLUMN credits_refill BIGINT NULL;  -- the balance each refill sets; NULL: no refill
ALTER TABLE api_keys ADD COLUMN credits_interval TEXT NULL;  -- 'day' | 'month' (UTC), with credits_refill
ALTER TABLE api_keys ADD COLUMN credits_set_at BIGINT NULL;  -- unix seconds the balance was granted: the generation its spending is counted under
