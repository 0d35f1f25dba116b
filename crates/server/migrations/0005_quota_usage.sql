-- Each key's quota usage per UTC day (days since the Unix epoch), written by the server's
-- charge journal before a charged call is answered. Replaces the periodic snapshot in
-- quota_snapshots, which the first start after this migration carries over and deletes.
CREATE TABLE quota_usage (
    subject TEXT NOT NULL,
    day     BIGINT NOT NULL,
    used    BIGINT NOT NULL,
    PRIMARY KEY (subject, day)
);
CREATE INDEX quota_usage_day ON quota_usage (day);
-- On a SQLite file, charges are first appended to log files beside it and folded into
-- quota_usage about once a second; `folded` is the sequence number of the last log folded, set
-- in the transaction that adds that log's charges, so that no log is counted twice.
CREATE TABLE quota_log (
    id     INTEGER PRIMARY KEY,
    folded BIGINT NOT NULL
);
