package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/roster-dev/roster/api"
	"github.com/roster-dev/roster/connectors/ldap"
	"github.com/roster-dev/roster/store"
	rsync "github.com/roster-dev/roster/sync"
)

// DirectoryTypes lists the kinds of directory roster can connect. The core
// knows connectors only through this table.
func DirectoryTypes() map[string]api.DirectoryType {
	return map[string]api.DirectoryType{
		"scim": {
			Prepare: func(raw json.RawMessage) (json.RawMessage, error) {
				if len(raw) == 0 || string(raw) == "null" || string(raw) == "{}" {
					return json.RawMessage("{}"), nil
				}
				return nil, errors.New("a SCIM directory takes no settings")
			},
		},
		"ldap": {
			Polled: true,
			Prepare: func(raw json.RawMessage) (json.RawMessage, error) {
				if len(raw) == 0 || string(raw) == "null" {
					return nil, errors.New(`give the connection under "ldap": url, bind_dn, bind_password, base_dn, ...`)
				}
				var c ldap.Config
				dec := json.NewDecoder(bytesReader(raw))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&c); err != nil {
					return nil, fmt.Errorf("invalid JSON: %w", err)
				}
				if err := c.Validate(); err != nil {
					return nil, err
				}
				return json.Marshal(c)
			},
			Redact: func(stored json.RawMessage) any {
				var c ldap.Config
				if err := json.Unmarshal(stored, &c); err != nil {
					return map[string]any{}
				}
				return c.Redacted()
			},
		},
	}
}

// Openers maps each polled directory type to its source.
func Openers() map[string]rsync.Opener {
	return map[string]rsync.Opener{
		"ldap": func(ctx context.Context, dir *store.Directory, log *slog.Logger) (rsync.Source, error) {
			var c ldap.Config
			if err := json.Unmarshal(dir.Settings, &c); err != nil {
				return nil, fmt.Errorf("stored ldap settings: %w", err)
			}
			return ldap.Open(ctx, c, log)
		},
	}
}
