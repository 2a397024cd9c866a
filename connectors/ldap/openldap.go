package ldap

import (
	"context"
	"fmt"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/roster-dev/roster/connectors"
)

const nilUUID = "00000000-0000-0000-0000-000000000000"

// baseUUID reads the base entry's entryUUID, which names the database the
// directory lives in: a fresh server at the same URL with the same base DN
// has another one. It is "" when the server does not show it (the check is
// then skipped rather than failing every poll).
func (s *Source) baseUUID(ctx context.Context, sess *session) (string, error) {
	req := goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"entryUUID"}, nil)
	entries, err := sess.searchAll(ctx, req)
	if err != nil {
		return "", fmt.Errorf("read entryUUID of %q: %w", s.cfg.BaseDN, err)
	}
	if len(entries) != 1 {
		return "", fmt.Errorf("read entryUUID of %q: %d entries", s.cfg.BaseDN, len(entries))
	}
	return entries[0].GetEqualFoldAttributeValue("entryUUID"), nil
}

// checkBase refuses an incremental poll against another database than the
// cursor's: its cookies or timestamps would read as "nothing changed" and
// the directory would look ok while the tree behind it is gone. Cursors
// made before the base was recorded carry none and are not checked; the
// next full listing records it.
func (s *Source) checkBase(ctx context.Context, sess *session, cur cursorData) error {
	if cur.BaseUUID == "" {
		return nil
	}
	got, err := s.baseUUID(ctx, sess)
	if ldapCode(err) == goldap.LDAPResultNoSuchObject {
		// Another server without our tree; the full listing will say so.
		return fmt.Errorf("%w: %v", connectors.ErrResync, err)
	}
	if err != nil {
		return err
	}
	if got != cur.BaseUUID {
		return fmt.Errorf("%w: the server's database changed (base entryUUID %q, cursor made on %q)", connectors.ErrResync, got, cur.BaseUUID)
	}
	return nil
}

// syncResult is one RFC 4533 refreshOnly run.
type syncResult struct {
	cookie       []byte
	entries      []*goldap.Entry
	deleted      []string
	present      map[string]struct{}
	presentPhase bool // the server did a present phase: absent ids are gone
}

// syncRefresh runs an RFC 4533 refreshOnly search from cookie.
func (s *Source) syncRefresh(ctx context.Context, sess *session, filter string, attrs []string, cookie []byte) (*syncResult, error) {
	req := goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		filter, attrs, nil)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp := sess.conn.Syncrepl(rctx, req, 256, goldap.SyncRequestModeRefreshOnly, cookie, false)
	r := &syncResult{cookie: cookie, present: map[string]struct{}{}}
	done := false
	for resp.Next() {
		ctrls := resp.Controls()
		if e := resp.Entry(); e != nil {
			st, _ := goldap.FindControl(ctrls, goldap.ControlTypeSyncState).(*goldap.ControlSyncState)
			if st == nil {
				r.entries = append(r.entries, e)
				continue
			}
			id := st.EntryUUID.String()
			switch st.State {
			case goldap.SyncStatePresent:
				r.present[id] = struct{}{}
			case goldap.SyncStateDelete:
				r.deleted = append(r.deleted, id)
			default:
				r.entries = append(r.entries, e)
				r.present[id] = struct{}{}
			}
			if len(st.Cookie) > 0 {
				r.cookie = st.Cookie
			}
			continue
		}
		for _, c := range ctrls {
			switch c := c.(type) {
			case *goldap.ControlSyncInfo:
				switch {
				case c.NewCookie != nil:
					r.cookie = nonEmpty(c.NewCookie.Cookie, r.cookie)
				case c.RefreshDelete != nil:
					r.cookie = nonEmpty(c.RefreshDelete.Cookie, r.cookie)
				case c.RefreshPresent != nil:
					r.cookie = nonEmpty(c.RefreshPresent.Cookie, r.cookie)
				case c.SyncIdSet != nil:
					r.cookie = nonEmpty(c.SyncIdSet.Cookie, r.cookie)
					for _, u := range c.SyncIdSet.SyncUUIDs {
						if c.SyncIdSet.RefreshDeletes {
							r.deleted = append(r.deleted, u.String())
						} else {
							r.present[u.String()] = struct{}{}
						}
					}
				}
			case *goldap.ControlSyncDone:
				done = true
				r.cookie = nonEmpty(c.Cookie, r.cookie)
				r.presentPhase = !c.RefreshDeletes
			}
		}
	}
	if err := resp.Err(); err != nil {
		switch ldapCode(err) {
		case 4096: // e-syncRefreshRequired
			return nil, fmt.Errorf("%w: the server wants a full reload: %v", connectors.ErrResync, err)
		case goldap.LDAPResultSizeLimitExceeded, goldap.LDAPResultAdminLimitExceeded:
			// Too much changed for an unpaged sync search; a paged full
			// listing can read it.
			return nil, fmt.Errorf("%w: too many changes for one sync search: %v", connectors.ErrResync, err)
		}
		return nil, fmt.Errorf("sync search %q: %w", filter, ctxErr(ctx, err))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !done {
		return nil, fmt.Errorf("sync search %q: ended without a sync done control", filter)
	}
	// With refreshDeletes=false and an empty cookie change, a server that
	// saw nothing new may still claim a present phase; only trust it when it
	// actually listed what is present.
	if r.presentPhase && len(r.present) == 0 && len(r.entries) == 0 && len(r.deleted) == 0 {
		r.presentPhase = false
	}
	return r, nil
}

func nonEmpty(a, b []byte) []byte {
	if len(a) > 0 {
		return a
	}
	return b
}

// syncStart returns a sync cookie for "now": a refresh whose filter matches
// nothing reads no entries and ends with the current cookie.
func (s *Source) syncStart(ctx context.Context, sess *session, filter string) ([]byte, error) {
	r, err := s.syncRefresh(ctx, sess, "(&"+filter+"(entryUUID="+nilUUID+"))", []string{"entryUUID"}, nil)
	if err != nil {
		return nil, err
	}
	if len(r.cookie) == 0 {
		return nil, fmt.Errorf("sync search: no cookie")
	}
	return r.cookie, nil
}

// syncChanges runs one refresh per filter (users, groups) from the cursor's
// cookies.
func (s *Source) syncChanges(ctx context.Context, sess *session, cur cursorData, ch *changeSet) (cursorData, error) {
	if !sess.rootDN.Controls[oidSyncRequest] {
		return cursorData{}, fmt.Errorf("%w: server %s has no sync provider", connectors.ErrResync, sess.url)
	}
	ur, err := s.syncRefresh(ctx, sess, s.sc.userFilter, s.sc.userAttrs(), cur.UserCookie)
	if err != nil {
		return cursorData{}, fmt.Errorf("users: %w", err)
	}
	gr, err := s.syncRefresh(ctx, sess, s.sc.groupFilter, s.sc.groupAttrs(), cur.GroupCookie)
	if err != nil {
		return cursorData{}, fmt.Errorf("groups: %w", err)
	}
	ch.users = append(ch.users, ur.entries...)
	ch.groups = append(ch.groups, gr.entries...)
	// A deleted entry's kind is known from the index; a sync session log may
	// report deletions outside the search's filter, so without the index it
	// is reported in both lists.
	for _, id := range ur.deleted {
		ch.deleted(id, false, false)
	}
	for _, id := range gr.deleted {
		ch.deleted(id, true, false)
	}
	if ur.presentPhase || gr.presentPhase {
		present := map[string]struct{}{}
		if ur.presentPhase {
			for id := range ur.present {
				present[id] = struct{}{}
			}
		} else if err := s.listIDs(ctx, sess, s.sc.userFilter, present); err != nil {
			return cursorData{}, fmt.Errorf("list user ids: %w", err)
		}
		if gr.presentPhase {
			for id := range gr.present {
				present[id] = struct{}{}
			}
		} else if err := s.listIDs(ctx, sess, s.sc.groupFilter, present); err != nil {
			return cursorData{}, fmt.Errorf("list group ids: %w", err)
		}
		ch.present = present
		if ch.idx != nil {
			for id := range ch.idx.dnOf {
				if _, ok := present[id]; !ok {
					ch.idx.remove(id)
				}
			}
		}
	}
	return cursorData{UserCookie: ur.cookie, GroupCookie: gr.cookie}, nil
}

const genTime = "20060102150405Z"

// timestampCursor starts modifyTimestamp polling at the newest timestamp
// listed, minus how long the listing took and a minute of slack, so that
// entries changed while listing are read again.
func timestampCursor(maxStamp string, took time.Duration) string {
	t, err := time.Parse(genTime, maxStamp)
	if err != nil {
		t = time.Now().UTC()
	}
	return t.Add(-took - time.Minute).UTC().Format(genTime)
}

// timestampChanges reads entries whose modifyTimestamp is at or after the
// cursor's. Deletions are found by the periodic full listing.
func (s *Source) timestampChanges(ctx context.Context, sess *session, cur cursorData, ch *changeSet) (cursorData, error) {
	since := cur.Since
	if since == "" {
		return cursorData{}, fmt.Errorf("%w: timestamp cursor without a time", connectors.ErrResync)
	}
	maxStamp := since
	f := "(modifyTimestamp>=" + goldap.EscapeFilter(since) + ")"
	track := func(e *goldap.Entry) {
		if v := e.GetEqualFoldAttributeValue("modifyTimestamp"); v > maxStamp {
			maxStamp = v
		}
	}
	if err := s.readByFilter(ctx, sess, "(&"+s.sc.userFilter+f+")", append(s.sc.userAttrs(), "modifyTimestamp"), func(e *goldap.Entry) {
		track(e)
		ch.users = append(ch.users, e)
	}); err != nil {
		return cursorData{}, fmt.Errorf("read changed users: %w", err)
	}
	if err := s.readByFilter(ctx, sess, "(&"+s.sc.groupFilter+f+")", append(s.sc.groupAttrs(), "modifyTimestamp"), func(e *goldap.Entry) {
		track(e)
		ch.groups = append(ch.groups, e)
	}); err != nil {
		return cursorData{}, fmt.Errorf("read changed groups: %w", err)
	}
	return cursorData{Since: maxStamp}, nil
}
