package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/roster-dev/roster/api"
	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/google"
	"github.com/roster-dev/roster/connectors/ldap"
	"github.com/roster-dev/roster/connectors/msgraph"
	"github.com/roster-dev/roster/connectors/okta"
)

// ConnectorTypes are the polled directory types, by the name the API and
// the store use. The core knows connectors only through this table: a new
// source is its folder under connectors/ and one line here.
func ConnectorTypes() map[string]connectors.Type {
	return map[string]connectors.Type{
		"ldap":    {NewConfig: func() connectors.Config { return new(ldap.Config) }},
		"google":  {NewConfig: func() connectors.Config { return new(google.Config) }},
		"msgraph": {NewConfig: func() connectors.Config { return new(msgraph.Config) }},
		"okta":    {NewConfig: func() connectors.Config { return new(okta.Config) }},
	}
}

// DirectoryTypes lists the kinds of directory the admin API can create:
// SCIM, which identity providers push to, and every polled connector.
func DirectoryTypes(log *slog.Logger) map[string]api.DirectoryType {
	out := map[string]api.DirectoryType{
		"scim": scimType(),
	}
	for name, t := range ConnectorTypes() {
		out[name] = polledType(name, t, log)
	}
	return out
}

// scimType is how the admin API handles a SCIM directory's settings: only
// the deletion guard, parsed strictly and validated.
func scimType() api.DirectoryType {
	store := func(s connectors.SCIMSettings, err error) (json.RawMessage, error) {
		if err != nil {
			return nil, err
		}
		return json.Marshal(s)
	}
	return api.DirectoryType{
		Prepare: func(_ context.Context, raw json.RawMessage) (json.RawMessage, error) {
			return store(connectors.ParseSCIMSettings(raw))
		},
		Merge: func(_ context.Context, stored, patch json.RawMessage) (json.RawMessage, error) {
			return store(connectors.MergeSCIMSettings(stored, patch))
		},
		Redact: func(stored json.RawMessage) any {
			g := connectors.LoadSCIMSettings(stored).DeletionGuard
			n, f, w := g.Limits()
			return map[string]any{"deletion_guard": map[string]any{
				"enabled": g.Enabled, "max_removals": n, "max_fraction": f, "window": w.String(),
			}}
		},
	}
}

// polledType is how the admin API handles a connector's settings: parsed
// strictly, validated and tested against the source on the way in,
// redacted on the way out.
func polledType(name string, t connectors.Type, log *slog.Logger) api.DirectoryType {
	return api.DirectoryType{
		Polled: true,
		Prepare: func(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
			if len(raw) == 0 || string(raw) == "null" {
				return nil, fmt.Errorf("missing: give the connection settings under %q", name)
			}
			c, err := t.Parse(raw)
			if err != nil {
				return nil, err
			}
			if err := testConnection(ctx, c, log); err != nil {
				return nil, err
			}
			return json.Marshal(c)
		},
		Merge: func(ctx context.Context, stored, patch json.RawMessage) (json.RawMessage, error) {
			c, err := t.Merge(stored, patch)
			if err != nil {
				return nil, err
			}
			if err := testConnection(ctx, c, log); err != nil {
				return nil, err
			}
			return json.Marshal(c)
		},
		Redact: func(stored json.RawMessage) any {
			c, err := t.Load(stored)
			if err != nil {
				return map[string]any{}
			}
			return c.Redacted()
		},
	}
}

// testConnectionTimeout bounds the test an admin waits for when creating or
// changing a polled directory.
const testConnectionTimeout = 30 * time.Second

// testConnection opens the source once and, where it can, has it prove its
// credentials and permissions with a cheap call. The error names the fix.
func testConnection(ctx context.Context, c connectors.Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, testConnectionTimeout)
	defer cancel()
	src, err := c.Open(ctx, log)
	if err != nil {
		return fmt.Errorf("test connection: %w", err)
	}
	if cl, ok := src.(connectors.Closer); ok {
		defer cl.Close()
	}
	if ch, ok := src.(connectors.Checker); ok {
		if err := ch.Check(ctx); err != nil {
			return fmt.Errorf("test connection: %w", err)
		}
	}
	return nil
}
