-- Admin tokens get a lifecycle: an optional label (who or what holds it) and an optional
-- expiry. Tokens made before have neither: no label, never expire.
ALTER TABLE admin_tokens ADD COLUMN label TEXT NULL;
ALTER TABLE admin_tokens ADD COLUMN expires_at BIGINT NULL;
