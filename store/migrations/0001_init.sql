-- roster schema, version 1. One text for both engines: {{ID}} becomes an
-- auto-incrementing 64-bit key (SQLite INTEGER PRIMARY KEY AUTOINCREMENT,
-- PostgreSQL BIGSERIAL PRIMARY KEY); {{NOROWID}} makes link tables SQLite
-- WITHOUT ROWID tables (one b-tree instead of two) and is empty on
-- PostgreSQL. Times are BIGINT unix microseconds.

-- +goose Up

CREATE TABLE admin_tokens (
    hash       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE teams (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    plan                TEXT NOT NULL,
    sso_status          TEXT NOT NULL DEFAULT 'inactive',
    sso_provider        TEXT NOT NULL DEFAULT '',
    default_limit_cents BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE directories (
    id           TEXT PRIMARY KEY,
    team_id      TEXT NOT NULL REFERENCES teams(id),
    type         TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    settings     TEXT NOT NULL DEFAULT '{}',
    token_hash   TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'ok',
    last_sync_at BIGINT,
    last_error   TEXT NOT NULL DEFAULT '',
    cursor       TEXT NOT NULL DEFAULT '',
    cursor_kind  TEXT NOT NULL DEFAULT '',
    last_full_at BIGINT,
    review       TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX directories_team ON directories (team_id);
CREATE INDEX directories_token ON directories (token_hash);

-- The mirror: what each directory says.
CREATE TABLE mirror_users (
    directory_id    TEXT NOT NULL,
    id              TEXT NOT NULL,
    external_id     TEXT,
    user_name       TEXT NOT NULL,
    user_name_lower TEXT NOT NULL,
    display_name    TEXT NOT NULL DEFAULT '',
    given_name      TEXT NOT NULL DEFAULT '',
    family_name     TEXT NOT NULL DEFAULT '',
    email           TEXT NOT NULL DEFAULT '',
    active          BOOLEAN NOT NULL,
    resource        TEXT NOT NULL DEFAULT '{}',
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (directory_id, id)
);
CREATE UNIQUE INDEX mirror_users_user_name ON mirror_users (directory_id, user_name_lower);
CREATE INDEX mirror_users_external_id ON mirror_users (directory_id, external_id);
CREATE INDEX mirror_users_active ON mirror_users (directory_id, active);

CREATE TABLE mirror_user_emails (
    directory_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    value_lower  TEXT NOT NULL,
    type         TEXT NOT NULL DEFAULT '',
    is_primary   BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX mirror_user_emails_user ON mirror_user_emails (directory_id, user_id);
CREATE INDEX mirror_user_emails_value ON mirror_user_emails (directory_id, value_lower);

CREATE TABLE mirror_groups (
    directory_id       TEXT NOT NULL,
    id                 TEXT NOT NULL,
    external_id        TEXT,
    display_name       TEXT NOT NULL,
    display_name_lower TEXT NOT NULL,
    resource           TEXT NOT NULL DEFAULT '{}',
    version            BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    PRIMARY KEY (directory_id, id)
);
CREATE UNIQUE INDEX mirror_groups_display_name ON mirror_groups (directory_id, display_name_lower);
CREATE INDEX mirror_groups_external_id ON mirror_groups (directory_id, external_id);

-- Memberships are rows, never one blob: member_type is 'User' or 'Group'.
CREATE TABLE mirror_members (
    directory_id TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    member_id    TEXT NOT NULL,
    member_type  TEXT NOT NULL,
    PRIMARY KEY (directory_id, group_id, member_id)
) {{NOROWID}};
CREATE INDEX mirror_members_member ON mirror_members (directory_id, member_id);

-- What the reconciler still has to look at. kind: user, group, subtree, all.
CREATE TABLE dirty (
    directory_id TEXT NOT NULL,
    kind         TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    gen          BIGINT NOT NULL,
    observed_at  BIGINT NOT NULL,
    PRIMARY KEY (directory_id, kind, object_id)
) {{NOROWID}};

-- The roster: what roster has applied.
CREATE TABLE members (
    directory_id     TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    team_id          TEXT NOT NULL,
    email            TEXT NOT NULL,
    name             TEXT NOT NULL,
    limit_cents      BIGINT,
    limit_source     TEXT NOT NULL,
    limit_group_id   TEXT NOT NULL DEFAULT '',
    limit_group_name TEXT NOT NULL DEFAULT '',
    added_at         BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (directory_id, user_id)
);
CREATE INDEX members_team ON members (team_id, user_id, directory_id);
CREATE INDEX members_team_email ON members (team_id, email);

CREATE TABLE member_groups (
    directory_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    PRIMARY KEY (directory_id, user_id, group_id)
) {{NOROWID}};
CREATE INDEX member_groups_group ON member_groups (directory_id, group_id);

CREATE TABLE roster_groups (
    directory_id TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    team_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    PRIMARY KEY (directory_id, group_id)
);
CREATE INDEX roster_groups_team ON roster_groups (team_id, group_id);

-- Per-group spend limits set by admins. A row means the group has a limit;
-- limit_cents NULL means unlimited.
CREATE TABLE group_limits (
    team_id     TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    limit_cents BIGINT,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (team_id, group_id)
);

CREATE TABLE events (
    seq          {{ID}},
    team_id      TEXT NOT NULL,
    directory_id TEXT NOT NULL DEFAULT '',
    type         TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    data         TEXT NOT NULL
);
CREATE INDEX events_team ON events (team_id, seq);

CREATE TABLE scim_requests (
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
CREATE INDEX scim_requests_dir ON scim_requests (directory_id, id);
CREATE INDEX scim_requests_at ON scim_requests (at);
