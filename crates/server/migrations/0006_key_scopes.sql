-- What each API key may call: `*` (every scope), or scope names separated by spaces
-- (`time:read prime:check`). NULL: every key created before this migration, which keeps every
-- scope, as it had before scopes existed.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NULL;
