-- Team-scoped admin tokens. A row with team_id '' is an operator token
-- (from --admin-token or generated), which sees every team; a row with a
-- team_id is a team token, made through the API, which sees only that team
-- and has an id the API lists and deletes it by. last_used_at is written at
-- most once a minute per token. The member and group searches of the admin
-- page filter on the limit's source group, hence the index.

-- +goose Up
ALTER TABLE admin_tokens ADD COLUMN id TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_tokens ADD COLUMN team_id TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_tokens ADD COLUMN last_used_at BIGINT;
CREATE INDEX admin_tokens_team ON admin_tokens (team_id, id);
CREATE INDEX members_team_limit_group ON members (team_id, limit_group_id);

-- +goose Down
DROP INDEX members_team_limit_group;
DROP INDEX admin_tokens_team;
ALTER TABLE admin_tokens DROP COLUMN last_used_at;
ALTER TABLE admin_tokens DROP COLUMN team_id;
ALTER TABLE admin_tokens DROP COLUMN id;
