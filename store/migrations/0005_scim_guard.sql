-- The SCIM mass-unassign guard. members.pending_removal marks a member the
-- directory removed while the guard held the removal back: still on the
-- roster until an admin approves. roster_removals logs the removals the
-- reconciler applied for directories with the guard on, so it can count
-- them within the guard's window (rows older than the window are pruned).

-- +goose Up
ALTER TABLE members ADD COLUMN pending_removal BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE roster_removals (
    directory_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    removed_at   BIGINT NOT NULL
);
CREATE INDEX roster_removals_dir ON roster_removals (directory_id, removed_at);

-- +goose Down
DROP TABLE roster_removals;
ALTER TABLE members DROP COLUMN pending_removal;
