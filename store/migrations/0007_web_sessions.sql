-- Sessions of the admin web page, kept here so they hold across replicas
-- and restarts. A session is found by the SHA-256 of its cookie value (the
-- cookie itself is never stored). principal is what the session acts as
-- (JSON: operator, or a team token), token_id the admin token it signed in
-- with, so deleting that token ends its sessions. csrf is the session's
-- CSRF token: it must be written into every form, so it is kept as is.
-- flash holds what the next page shows once (a new SCIM token, a webhook
-- secret), encrypted with a key derived from the cookie, which is not
-- stored: the database alone cannot read it. Times are Unix microseconds;
-- expires_at is the earlier of the sliding inactivity limit and the
-- absolute one.

-- +goose Up
CREATE TABLE web_sessions (
    id_hash      TEXT PRIMARY KEY,
    principal    TEXT NOT NULL,
    token_id     TEXT NOT NULL DEFAULT '',
    csrf         TEXT NOT NULL,
    flash        TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX web_sessions_token ON web_sessions (token_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- +goose Down
DROP TABLE web_sessions;
