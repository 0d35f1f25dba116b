-- One schema for SQLite and PostgreSQL: only types and clauses both accept
-- (TEXT, BIGINT, NULL, UNIQUE, ON CONFLICT). Times are unix seconds.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- API keys are stored only as a hash of the key. `id` is the non-secret key id shown in
-- logs and admin listings. A signing key's secret is stored encrypted (nonce || ciphertext, hex).
CREATE TABLE api_keys (
    id             TEXT PRIMARY KEY,
    key_hash       TEXT NOT NULL UNIQUE,
    service        TEXT NOT NULL,
    daily_quota    BIGINT NULL,
    signing_secret TEXT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NULL,
    revoked_at     BIGINT NULL
);
CREATE INDEX api_keys_service ON api_keys (service);

-- Revoked JWTs, kept by `jti` until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Admin tokens, stored only as hashes like API keys.
CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NULL
);

-- In-memory quota counters, saved periodically and at shutdown (the quota crate's JSON
-- snapshot), so a restart does not give every key a fresh day.
CREATE TABLE quota_snapshots (
    name     TEXT PRIMARY KEY,
    taken_at BIGINT NOT NULL,
    data     TEXT NOT NULL
);
