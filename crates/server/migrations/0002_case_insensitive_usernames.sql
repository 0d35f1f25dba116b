-- Usernames are compared case-insensitively: `username_canonical` is the lowercase form (names
-- are ASCII only), unique, and what login looks up. `username` keeps the case it was
-- registered with, for display.
--
-- Rows that existed before and differ only in case (`alice` and `Alice`) all keep a NULL
-- canonical form: none of them is dropped or renamed, each still logs in with its exact name,
-- and no new account can take any spelling of it. The server logs them at every start until
-- an operator resolves them.
ALTER TABLE users ADD COLUMN username_canonical TEXT NULL;

UPDATE users SET username_canonical = LOWER(username)
WHERE NOT EXISTS (
    SELECT 1 FROM users other
    WHERE LOWER(other.username) = LOWER(users.username) AND other.id <> users.id
);

CREATE UNIQUE INDEX users_username_canonical ON users (username_canonical);
CREATE INDEX users_username_lower ON users (LOWER(username));
