-- What an operator records about a key: a display name, the owner (an id in the operator's
-- own systems, such as a customer or user id) and a JSON object of at most 4 KiB, stored as
-- its compact text. Keys created before have none of them.
ALTER TABLE api_keys ADD COLUMN name TEXT NULL;
ALTER TABLE api_keys ADD COLUMN owner TEXT NULL;
ALTER TABLE api_keys ADD COLUMN meta TEXT NULL;
