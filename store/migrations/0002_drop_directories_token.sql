-- A SCIM request names its directory in the URL and is checked against
-- that directory's token hash; nothing looks a directory up by its token,
-- so the index only cost every directory update a write.

-- +goose Up
DROP INDEX directories_token;

-- +goose Down
CREATE INDEX directories_token ON directories (token_hash);
