-- The SCIM request log in a SQLite file of its own (see reqlog.go); on
-- PostgreSQL the table is in the main database (migration 0001 there).
-- IF NOT EXISTS: files written before the log had migrations hold the
-- table already, without goose's bookkeeping.

-- +goose Up
CREATE TABLE IF NOT EXISTS scim_requests (
    id           {{ID}},
    directory_id TEXT NOT NULL,
    at           BIGINT NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       INTEGER NOT NULL,
    duration_us  BIGINT NOT NULL,
    error        TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS scim_requests_dir ON scim_requests (directory_id, id);
CREATE INDEX IF NOT EXISTS scim_requests_at ON scim_requests (at);
