-- Usage history: per key and UTC day (days since 1970-01-01), the calls of each outcome:
-- `accepted`, or refused for `quota` (429) or `scope` (403). Servers add to the rows in
-- batches; rows older than 400 days are deleted.
CREATE TABLE key_usage (
    key_id TEXT NOT NULL,
    day BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    calls BIGINT NOT NULL,
    PRIMARY KEY (key_id, day, outcome)
);
CREATE INDEX key_usage_by_day ON key_usage (day);
