package web

import (
	"encoding/json"
	"time"
)

// The admin API's answers, as the page reads them.

type team struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Plan string `json:"plan"`
	SSO  struct {
		Status   string `json:"status"`
		Provider string `json:"provider"`
	} `json:"sso"`
	DefaultLimit struct {
		Cents *int64 `json:"per_user_cents"`
	} `json:"default_spend_limit"`
}

func (t *team) SSOActive() bool  { return t.SSO.Status == "active" }
func (t *team) Enterprise() bool { return t.Plan == "enterprise" }
func (t *team) Ready() bool      { return t.SSOActive() && t.Enterprise() }

// DefaultText is the team default limit as the page shows it.
func (t *team) DefaultText() string { return limitText(t.DefaultLimit.Cents, true) }

type review struct {
	HeldAt       time.Time `json:"held_at"`
	WouldRemove  int       `json:"would_remove"`
	ActiveBefore int       `json:"active_before"`
	MaxRemovals  int       `json:"max_removals"`
	MaxFraction  float64   `json:"max_fraction"`
	Sample       []string  `json:"sample"`
	Approved     bool      `json:"approved"`
}

type lastPoll struct {
	At                  time.Time `json:"at"`
	Kind                string    `json:"kind"`
	Result              string    `json:"result"`
	DurationMS          float64   `json:"duration_ms"`
	Error               string    `json:"error"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
}

type directory struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	State      string     `json:"state"`
	LastSyncAt *time.Time `json:"last_sync_at"`
	LastError  string     `json:"last_error"`
	CreatedAt  time.Time  `json:"created_at"`
	Review     *review    `json:"review"`
	LastPoll   *lastPoll  `json:"last_poll"`
	SCIM       *struct {
		BaseURL string `json:"base_url"`
		Token   string `json:"token"`
	} `json:"scim"`
	Counts *struct {
		Users   int `json:"users"`
		Groups  int `json:"groups"`
		Members int `json:"members"`
		Pending int `json:"pending_changes"`
	} `json:"counts"`
	// LagSeconds is how long the oldest change not yet applied has waited.
	LagSeconds float64 `json:"lag_seconds"`
}

// Label names the directory for the admin.
func (d *directory) Label() string {
	if d.Name != "" {
		return d.Name
	}
	return typeNames[d.Type] + " directory"
}

// Polled says whether roster polls the directory (every type but SCIM).
func (d *directory) Polled() bool { return d.Type != "scim" }

var typeNames = map[string]string{
	"scim": "SCIM", "ldap": "LDAP / Active Directory", "google": "Google Workspace",
	"msgraph": "Microsoft Graph (Entra ID)", "okta": "Okta API",
}

type scimRequest struct {
	ID         string          `json:"id"`
	At         time.Time       `json:"at"`
	Method     string          `json:"method"`
	Path       string          `json:"path"`
	Status     int             `json:"status"`
	DurationMS float64         `json:"duration_ms"`
	Error      string          `json:"error"`
	Body       json.RawMessage `json:"body"`
}

// Created says what a successful create made, from its SCIM body.
func (q *scimRequest) Created() string {
	if q.Method != "POST" || q.Status != 201 || len(q.Body) == 0 {
		return ""
	}
	var b struct {
		UserName    string `json:"userName"`
		DisplayName string `json:"displayName"`
		Schemas     []string
	}
	if json.Unmarshal(q.Body, &b) != nil {
		return ""
	}
	switch {
	case b.UserName != "":
		return "created user " + b.UserName
	case b.DisplayName != "":
		return "created group " + b.DisplayName
	}
	return ""
}

type groupRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Limit is the group's per_user_cents when it has a limit ("null":
	// unlimited); absent otherwise.
	Limit json.RawMessage `json:"per_user_cents"`
}

// limit reads the group's limit as a member's answer shows it.
func (g *groupRef) limit() (cents *int64, set bool) {
	if len(g.Limit) == 0 {
		return nil, false
	}
	var c *int64
	if json.Unmarshal(g.Limit, &c) != nil {
		return nil, false
	}
	return c, true
}

type group struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DirectoryID string `json:"directory_id"`
	MemberCount int    `json:"member_count"`
	SpendLimit  struct {
		Cents     *int64 `json:"per_user_cents"`
		Unlimited bool   `json:"unlimited"`
		Set       bool   `json:"set"`
	} `json:"spend_limit"`
}

// LimitText is the group's limit as the page shows it.
func (g *group) LimitText() string { return limitText(g.SpendLimit.Cents, g.SpendLimit.Set) }

// Mode is the limit form's current choice.
func (g *group) Mode() string {
	switch {
	case !g.SpendLimit.Set:
		return "none"
	case g.SpendLimit.Cents == nil:
		return "unlimited"
	}
	return "dollars"
}

// Dollars is the limit form's current amount.
func (g *group) Dollars() string {
	if g.SpendLimit.Cents == nil {
		return ""
	}
	return FormatCents(*g.SpendLimit.Cents)[1:]
}

type member struct {
	ID         string     `json:"id"`
	Email      string     `json:"email"`
	Name       string     `json:"name"`
	Groups     []groupRef `json:"groups"`
	SpendLimit struct {
		Cents  *int64 `json:"per_user_cents"`
		Source struct {
			Type      string  `json:"type"`
			GroupID   *string `json:"group_id"`
			GroupName *string `json:"group_name"`
		} `json:"source"`
	} `json:"spend_limit"`
	PendingRemoval bool `json:"pending_removal"`
}

// LimitText is the member's effective limit as the page shows it.
func (m *member) LimitText() string { return limitText(m.SpendLimit.Cents, true) }

// SourceGroupID is the group that decides the member's limit, or "".
func (m *member) SourceGroupID() string {
	if m.SpendLimit.Source.Type == "group" && m.SpendLimit.Source.GroupID != nil {
		return *m.SpendLimit.Source.GroupID
	}
	return ""
}

type event struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	OccurredAt  time.Time       `json:"occurred_at"`
	DirectoryID string          `json:"directory_id"`
	Data        json.RawMessage `json:"data"`
}

// Summary is a short line of what the event's data says.
func (e *event) Summary() string {
	var d map[string]any
	if json.Unmarshal(e.Data, &d) != nil {
		return ""
	}
	var parts []string
	for _, k := range []string{"email", "name", "group_name", "display_name"} {
		if v, ok := d[k].(string); ok && v != "" {
			parts = append(parts, v)
		}
	}
	if len(parts) == 0 {
		if b, err := json.Marshal(d); err == nil && len(b) < 200 {
			return string(b)
		}
	}
	return joinComma(parts)
}

type webhook struct {
	ID          string   `json:"id"`
	URL         string   `json:"url"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	State       string   `json:"state"`
	Cursor      string   `json:"cursor"`
	Lag         struct {
		Events     int64   `json:"events"`
		AgeSeconds float64 `json:"oldest_event_age_seconds"`
	} `json:"lag"`
	LastError      string `json:"last_error"`
	DisabledReason string `json:"disabled_reason"`
	Deliveries     []delivery
}

type delivery struct {
	ID         string    `json:"id"`
	EventID    string    `json:"event_id"`
	At         time.Time `json:"at"`
	Status     int       `json:"status"`
	Result     string    `json:"result"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error"`
}

type adminToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func joinComma(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += ", "
		}
		out += p
	}
	return out
}
