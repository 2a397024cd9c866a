package app

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/roster-dev/roster/api"
	"github.com/roster-dev/roster/connectors"
	"github.com/roster-dev/roster/connectors/ldap"
)

// ConnectorTypes are the polled directory types, by the name the API and
// the store use. The core knows connectors only through this table: a new
// source is its folder under connectors/ and one line here.
func ConnectorTypes() map[string]connectors.Type {
	return map[string]connectors.Type{
		"ldap": {NewConfig: func() connectors.Config { return new(ldap.Config) }},
	}
}

// DirectoryTypes lists the kinds of directory the admin API can create:
// SCIM, which identity providers push to, and every polled connector.
func DirectoryTypes() map[string]api.DirectoryType {
	out := map[string]api.DirectoryType{
		"scim": {
			Prepare: func(raw json.RawMessage) (json.RawMessage, error) {
				if len(raw) == 0 || string(raw) == "null" || string(raw) == "{}" {
					return json.RawMessage("{}"), nil
				}
				return nil, errors.New("a SCIM directory takes no settings")
			},
		},
	}
	for name, t := range ConnectorTypes() {
		out[name] = polledType(name, t)
	}
	return out
}

// polledType is how the admin API handles a connector's settings: parsed
// strictly and validated on the way in, redacted on the way out.
func polledType(name string, t connectors.Type) api.DirectoryType {
	return api.DirectoryType{
		Polled: true,
		Prepare: func(raw json.RawMessage) (json.RawMessage, error) {
			if len(raw) == 0 || string(raw) == "null" {
				return nil, fmt.Errorf("missing: give the connection settings under %q", name)
			}
			c, err := t.Parse(raw)
			if err != nil {
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
