package ldap

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"
)

// pagedSearch runs req page by page (RFC 2696) and hands each entry to fn as
// it arrives; nothing is buffered beyond one page's channel. Any failed page,
// non-success result or cancelled context is an error: the caller must then
// discard what fn saw.
func (sess *session) pagedSearch(ctx context.Context, req *goldap.SearchRequest, pageSize int, fn func(*goldap.Entry) error) error {
	paging := goldap.NewControlPaging(uint32(pageSize))
	req.Controls = append(req.Controls, paging)
	usePaging := true
	for page := 0; ; page++ {
		pctx, cancel := context.WithCancel(ctx)
		resp := sess.conn.SearchAsync(pctx, req, 256)
		var next []byte
		sawPaging := false
		var fnErr error
		for resp.Next() {
			if e := resp.Entry(); e != nil {
				if err := fn(e); err != nil {
					fnErr = err
					break
				}
				continue
			}
			if c, ok := goldap.FindControl(resp.Controls(), goldap.ControlTypePaging).(*goldap.ControlPaging); ok {
				sawPaging = true
				next = c.Cookie
			}
		}
		err := resp.Err()
		cancel()
		if fnErr != nil {
			return fnErr
		}
		if err != nil {
			return fmt.Errorf("search %q under %q (page %d): %w", req.Filter, req.BaseDN, page+1, ctxErr(ctx, err))
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("search %q under %q (page %d): %w", req.Filter, req.BaseDN, page+1, err)
		}
		if !usePaging || !sawPaging || len(next) == 0 {
			// No paging control in the answer: the server ignored the
			// (non-critical) control and sent the whole result, or a size
			// limit error was raised above.
			return nil
		}
		paging.SetCookie(next)
	}
}

// searchAll runs a small unpaged search and returns its entries.
func (sess *session) searchAll(ctx context.Context, req *goldap.SearchRequest) ([]*goldap.Entry, error) {
	var out []*goldap.Entry
	resp := sess.conn.SearchAsync(ctx, req, 16)
	for resp.Next() {
		if e := resp.Entry(); e != nil {
			out = append(out, e)
		}
	}
	if err := resp.Err(); err != nil {
		return nil, ctxErr(ctx, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// memberValues returns the values of attr on e, fetching the remaining
// ranges when the server sent only the first one (AD sends
// "member;range=0-1499" and no plain "member" for large groups).
func (sess *session) memberValues(ctx context.Context, e *goldap.Entry, attr string) ([]string, error) {
	var vals []string
	rangedFound := false
	next := -1
	prefix := strings.ToLower(attr) + ";range="
	for _, a := range e.Attributes {
		name := strings.ToLower(a.Name)
		switch {
		case name == strings.ToLower(attr):
			vals = append(vals, a.Values...)
		case strings.HasPrefix(name, prefix):
			lo, hi, err := parseRange(name[len(prefix):])
			if err != nil {
				return nil, fmt.Errorf("%s of %q: %w", a.Name, e.DN, err)
			}
			if lo != 0 {
				return nil, fmt.Errorf("%s of %q: first range does not start at 0", a.Name, e.DN)
			}
			rangedFound = true
			vals = append(vals, a.Values...)
			if hi >= 0 {
				next = hi + 1
			}
		}
	}
	if !rangedFound || next < 0 {
		return vals, nil
	}
	for next >= 0 {
		want := fmt.Sprintf("%s;range=%d-*", attr, next)
		req := goldap.NewSearchRequest(e.DN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{want}, nil)
		entries, err := sess.searchAll(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("read %s of %q: %w", want, e.DN, err)
		}
		if len(entries) != 1 {
			return nil, fmt.Errorf("read %s of %q: the entry is gone (%d entries)", want, e.DN, len(entries))
		}
		found := false
		for _, a := range entries[0].Attributes {
			name := strings.ToLower(a.Name)
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			lo, hi, err := parseRange(name[len(prefix):])
			if err != nil {
				return nil, fmt.Errorf("%s of %q: %w", a.Name, e.DN, err)
			}
			if lo != next {
				return nil, fmt.Errorf("%s of %q: asked for values from %d, got a range starting at %d", a.Name, e.DN, next, lo)
			}
			found = true
			vals = append(vals, a.Values...)
			if hi < 0 {
				next = -1
			} else {
				if hi < lo {
					return nil, fmt.Errorf("%s of %q: range makes no progress", a.Name, e.DN)
				}
				next = hi + 1
			}
		}
		if !found {
			return nil, fmt.Errorf("read %s of %q: the server returned no range; the member list would be incomplete", want, e.DN)
		}
	}
	return vals, nil
}

// parseRange reads "0-1499" or "1500-*" (hi = -1).
func parseRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	lo, err = strconv.Atoi(a)
	if err != nil || lo < 0 {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	if b == "*" {
		return lo, -1, nil
	}
	hi, err = strconv.Atoi(b)
	if err != nil {
		return 0, 0, fmt.Errorf("bad range %q", s)
	}
	return lo, hi, nil
}

// ldapCode returns the LDAP result code of err, or -1.
func ldapCode(err error) int {
	var le *goldap.Error
	if errors.As(err, &le) {
		return int(le.ResultCode)
	}
	return -1
}
