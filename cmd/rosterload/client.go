package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client talks to one roster: the admin API and a directory's SCIM base.
type client struct {
	http       *http.Client
	raw        *rawPool // SCIM requests go through it when set
	base       string   // roster URL, no trailing slash
	adminToken string

	teamID   string
	dirID    string
	scimBase string
	scimTok  string
}

func newClient(base, adminToken string, conns int) *client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &client{http: &http.Client{Transport: tr, Timeout: 60 * time.Second}, base: strings.TrimRight(base, "/"), adminToken: adminToken}
}

type response struct {
	status int
	body   []byte
	header http.Header
}

// do sends one request and reads the whole answer, so the connection is
// reused. body may be nil, []byte or any JSON-able value.
func (c *client) do(ctx context.Context, method, rawURL, token string, body any) (*response, error) {
	raw, err := encodeBody(body)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, body: b, header: resp.Header}, nil
}

// encodeBody turns a request body (nil, []byte or any JSON-able value)
// into bytes; nil stays nil.
func encodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return nil, nil
	case []byte:
		return b, nil
	default:
		return json.Marshal(b)
	}
}

func (c *client) admin(ctx context.Context, method, path string, body any) (*response, error) {
	return c.do(ctx, method, c.base+"/api/v1"+path, c.adminToken, body)
}

// mustAdmin calls the admin API and decodes the answer into out, failing
// unless the status is want.
func (c *client) mustAdmin(ctx context.Context, want int, method, path string, body, out any) error {
	res, err := c.admin(ctx, method, path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if res.status != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, res.status, want, truncate(string(res.body), 500))
	}
	if out != nil {
		if err := json.Unmarshal(res.body, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

func (c *client) scim(ctx context.Context, method, path string, body any) (*response, error) {
	if c.raw == nil {
		return c.do(ctx, method, c.scimBase+path, c.scimTok, body)
	}
	raw, err := encodeBody(body)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(c.scimBase + path)
	if err != nil {
		return nil, err
	}
	return c.raw.do(ctx, method, u.RequestURI(), c.scimTok, raw)
}

// setup creates an enterprise team with active SSO and a SCIM directory,
// unless one was given with -team/-directory/-scim-token.
func (c *client) setup(ctx context.Context, name string) error {
	if c.scimTok != "" {
		if c.scimBase == "" {
			c.scimBase = c.base + "/scim/v2/" + url.PathEscape(c.dirID)
		}
		return nil
	}
	var team struct {
		ID string `json:"id"`
	}
	if err := c.mustAdmin(ctx, http.StatusCreated, "POST", "/teams", map[string]any{"name": name, "plan": "enterprise", "default_spend_limit": map[string]any{"per_user_cents": nil}}, &team); err != nil {
		return err
	}
	if err := c.mustAdmin(ctx, http.StatusOK, "PUT", "/teams/"+team.ID+"/sso", map[string]any{"status": "active", "provider": "okta"}, nil); err != nil {
		return err
	}
	var dir struct {
		ID   string `json:"id"`
		SCIM struct {
			BaseURL string `json:"base_url"`
			Token   string `json:"token"`
		} `json:"scim"`
	}
	if err := c.mustAdmin(ctx, http.StatusCreated, "POST", "/teams/"+team.ID+"/directories", map[string]any{"type": "scim"}, &dir); err != nil {
		return err
	}
	c.teamID, c.dirID, c.scimTok = team.ID, dir.ID, dir.SCIM.Token
	// The base URL roster gives out is built from its public URL, which
	// may not be the address we reach it by: keep our own host.
	c.scimBase = c.base + "/scim/v2/" + url.PathEscape(dir.ID)
	return nil
}

func userBody(userName string) map[string]any {
	local, _, _ := strings.Cut(userName, "@")
	return map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName,
		"name":     map[string]any{"givenName": "Load", "familyName": local},
		"emails":   []any{map[string]any{"value": userName, "type": "work", "primary": true}},
		"active":   true,
	}
}

func idOf(res *response) string {
	var v struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(res.body, &v)
	return v.ID
}

func patchBody(ops ...map[string]any) map[string]any {
	list := make([]any, len(ops))
	for i, o := range ops {
		list[i] = o
	}
	return map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": list}
}

func addMembers(ids ...string) map[string]any {
	vals := make([]any, len(ids))
	for i, id := range ids {
		vals[i] = map[string]any{"value": id}
	}
	return patchBody(map[string]any{"op": "add", "path": "members", "value": vals})
}

func removeMember(id string) map[string]any {
	return patchBody(map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, id)})
}

func (c *client) createGroup(ctx context.Context, name string) (string, error) {
	res, err := c.scim(ctx, "POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"}, "displayName": name})
	if err != nil {
		return "", err
	}
	if res.status != http.StatusCreated {
		return "", fmt.Errorf("create group: status %d: %s", res.status, truncate(string(res.body), 300))
	}
	return idOf(res), nil
}
