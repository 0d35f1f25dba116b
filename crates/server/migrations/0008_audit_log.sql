-- The audit log: one row per admin action, append-only (the server inserts rows and never
-- changes or deletes one). `id` sorts by time: `aud_`, the writer's clock in microseconds as 16
-- hex digits, then 8 random hex digits. `actor` is the admin token id, `cli` or `first-start`;
-- `outcome` is `ok`, `refused` (the request broke a rule: `reason` says which) or `failed` (the
-- server could not do it); `detail` is a small JSON object (never a key, token or secret).
CREATE TABLE audit_log (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NULL,
    request_id TEXT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NULL,
    detail TEXT NULL
);
