-- Webhook endpoints and their delivery log. An endpoint is a cursor over
-- its team's event feed (cursor is the last delivered event's seq, 0 before
-- the first); status, failing_since, attempts and next_attempt_at are the
-- retry state machine of package webhooks. Secrets are kept as their
-- whsec_ value: they must sign, so they cannot be hashed. The delivery log
-- holds one row per attempt and is pruned after a retention.

-- +goose Up
CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    team_id         TEXT NOT NULL REFERENCES teams(id),
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    event_types     TEXT NOT NULL DEFAULT '[]',
    secret          TEXT NOT NULL,
    prev_secret     TEXT NOT NULL DEFAULT '',
    prev_until      BIGINT,
    status          TEXT NOT NULL DEFAULT 'active',
    cursor          BIGINT NOT NULL DEFAULT 0,
    failing_since   BIGINT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    last_error      TEXT NOT NULL DEFAULT '',
    disabled_reason TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_team ON webhook_endpoints (team_id);

CREATE TABLE webhook_deliveries (
    id          {{ID}},
    endpoint_id TEXT NOT NULL,
    event_id    BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status      INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    duration_us BIGINT NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    response    TEXT NOT NULL DEFAULT '',
    truncated   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
