-- What the last poll of a polled directory cost and how it ended (JSON:
-- kind, duration, requests, pages, items, throttled, retries, result), shown
-- on the directory; empty for SCIM directories and before the first poll.

-- +goose Up
ALTER TABLE directories ADD COLUMN last_poll TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE directories DROP COLUMN last_poll;
