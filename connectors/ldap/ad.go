package ldap

import (
	"context"
	"fmt"
	"strings"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/roster-dev/roster/connectors"
)

// invocationID reads the invocationId of the domain controller the session
// talks to (root DSE dsServiceName -> its invocationId). A cursor made on
// another DC, or after a restore, has another one.
func (s *Source) invocationID(ctx context.Context, sess *session) (string, error) {
	svc := sess.rootDN.DSServiceName
	if svc == "" {
		return "", nil
	}
	req := goldap.NewSearchRequest(svc, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"invocationId"}, nil)
	entries, err := sess.searchAll(ctx, req)
	if err != nil {
		return "", fmt.Errorf("read invocationId of %q: %w", svc, err)
	}
	if len(entries) != 1 {
		return "", fmt.Errorf("read invocationId of %q: %d entries", svc, len(entries))
	}
	raw := entries[0].GetEqualFoldRawAttributeValue("invocationId")
	if len(raw) != 16 {
		return "", fmt.Errorf("read invocationId of %q: not readable by the service account", svc)
	}
	return FormatGUID(raw), nil
}

// dirSyncBase is the naming context DirSync runs on (it cannot be scoped to
// an OU; entries are filtered by base_dn afterwards).
func (s *Source) dirSyncBase(sess *session) string {
	if sess.rootDN.DefaultNC != "" {
		return sess.rootDN.DefaultNC
	}
	return s.cfg.BaseDN
}

// dirSyncAttrs are the attributes DirSync watches: it reports an object
// only when one of the requested attributes changed, so ask for every
// attribute roster reads plus those that change on moves and deletions.
func (s *Source) dirSyncAttrs() []string {
	attrs := []string{"objectGUID", "objectClass", "isDeleted", "lastKnownParent", "name", "distinguishedName"}
	attrs = append(attrs, s.sc.userAttrs()...)
	attrs = append(attrs, s.sc.groupAttrs()...)
	return dedupFold(attrs)
}

const dirSyncFilter = "(|(objectClass=user)(objectClass=group))"

// dirSyncRun runs DirSync from cookie until the server has no more data,
// handing each entry to fn, and returns the new cookie.
func (s *Source) dirSyncRun(ctx context.Context, sess *session, filter string, cookie []byte, flags int64, fn func(*goldap.Entry)) ([]byte, error) {
	for round := 0; ; round++ {
		req := goldap.NewSearchRequest(s.dirSyncBase(sess), goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
			filter, s.dirSyncAttrs(), nil)
		rctx, cancel := context.WithCancel(ctx)
		resp := sess.conn.DirSyncAsync(rctx, req, 256, flags, 0, cookie)
		var ctrl *goldap.ControlDirSync
		for resp.Next() {
			if e := resp.Entry(); e != nil {
				fn(e)
				continue
			}
			if c, ok := goldap.FindControl(resp.Controls(), goldap.ControlTypeDirSync).(*goldap.ControlDirSync); ok {
				ctrl = c
			}
		}
		err := resp.Err()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("DirSync: %w", ctxErr(ctx, err))
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if ctrl == nil {
			return nil, fmt.Errorf("DirSync: the server answered without a DirSync control")
		}
		if len(ctrl.Cookie) > 0 {
			cookie = ctrl.Cookie
		}
		if ctrl.Flags == 0 {
			return cookie, nil
		}
		if round > 100000 {
			return nil, fmt.Errorf("DirSync: more data after %d rounds", round)
		}
	}
}

// dirSyncStart returns a DirSync cookie for "now" without reading the
// directory: a DirSync whose filter matches nothing still ends with a
// cookie at the current high-water mark.
func (s *Source) dirSyncStart(ctx context.Context, sess *session) ([]byte, int64, error) {
	cookie, err := s.dirSyncRun(ctx, sess, "(&(objectClass=user)(objectClass=group)(!(objectClass=*)))", nil, 0, func(*goldap.Entry) {})
	if err != nil {
		return nil, 0, err
	}
	return cookie, 0, nil
}

func dirSyncDenied(err error) bool {
	switch ldapCode(err) {
	case goldap.LDAPResultInsufficientAccessRights, goldap.LDAPResultUnavailableCriticalExtension,
		goldap.LDAPResultUnwillingToPerform, goldap.LDAPResultOperationsError:
		return true
	}
	return false
}

// stripExtendedDN removes "<GUID=...>;<SID=...>;" prefixes from a DN.
func stripExtendedDN(dn string) string {
	for strings.HasPrefix(dn, "<") {
		i := strings.Index(dn, ">;")
		if i < 0 {
			return dn
		}
		dn = dn[i+2:]
	}
	return dn
}

func isDeleted(e *goldap.Entry) bool {
	return strings.EqualFold(e.GetEqualFoldAttributeValue("isDeleted"), "TRUE")
}

func hasClass(e *goldap.Entry, class string) (has, known bool) {
	vals := e.GetEqualFoldAttributeValues("objectClass")
	for _, v := range vals {
		if strings.EqualFold(v, class) {
			return true, true
		}
	}
	return false, len(vals) > 0
}

// dirSyncChanges reads DirSync changes, then re-reads the changed objects
// whole (DirSync returns only changed attributes) within base_dn and the
// filters. Changed objects that no longer match are reported deleted.
func (s *Source) dirSyncChanges(ctx context.Context, sess *session, cur cursorData, ch *changeSet) (cursorData, error) {
	inv, err := s.invocationID(ctx, sess)
	if err != nil {
		return cursorData{}, err
	}
	if inv != cur.InvocationID {
		return cursorData{}, fmt.Errorf("%w: domain controller changed (invocationId %s, cursor made on %s)", connectors.ErrResync, inv, cur.InvocationID)
	}
	type hint struct{ group, known bool }
	changed := map[string]hint{}
	var order []string
	cookie, err := s.dirSyncRun(ctx, sess, dirSyncFilter, cur.DirSync, cur.DirSyncFlags, func(e *goldap.Entry) {
		raw := e.GetEqualFoldRawAttributeValue("objectGUID")
		if len(raw) != 16 {
			return
		}
		id := FormatGUID(raw)
		isGroup, known := hasClass(e, "group")
		if isDeleted(e) {
			if p := stripExtendedDN(e.GetEqualFoldAttributeValue("lastKnownParent")); p != "" && !inScope(s.base, p) {
				if ch.idx == nil {
					return
				}
				if _, ok := ch.idx.dnOf[id]; !ok {
					return
				}
			}
			delete(changed, id)
			ch.deleted(id, isGroup, known)
			return
		}
		if _, ok := changed[id]; !ok {
			order = append(order, id)
		}
		changed[id] = hint{isGroup, known}
	})
	if err != nil {
		if dirSyncDenied(err) {
			return cursorData{}, fmt.Errorf("%w: DirSync no longer permitted: %v", connectors.ErrResync, err)
		}
		return cursorData{}, err
	}
	var ids []string
	for _, id := range order {
		if _, ok := changed[id]; ok {
			ids = append(ids, id)
		}
	}
	found, err := s.readByIDs(ctx, sess, ids, ch)
	if err != nil {
		return cursorData{}, err
	}
	for _, id := range ids {
		if found[id] {
			continue
		}
		// Changed but not (any more) a user or group in scope: moved out of
		// base_dn or out of the filters. Only worth reporting when it may be
		// in the mirror.
		h := changed[id]
		if ch.idx != nil {
			if _, ok := ch.idx.dnOf[id]; !ok {
				continue
			}
		}
		ch.deleted(id, h.group, h.known)
	}
	return cursorData{InvocationID: inv, DirSync: cookie, DirSyncFlags: cur.DirSyncFlags}, nil
}

// readByIDs reads the users and groups with the given ids within scope and
// filters into ch; it returns the ids it found.
func (s *Source) readByIDs(ctx context.Context, sess *session, ids []string, ch *changeSet) (map[string]bool, error) {
	found := map[string]bool{}
	const batch = 50
	for i := 0; i < len(ids); i += batch {
		var f strings.Builder
		f.WriteString("(|")
		for _, id := range ids[i:min(i+batch, len(ids))] {
			f.WriteString(s.sc.idFilter(id))
		}
		f.WriteString(")")
		err := s.readByFilter(ctx, sess, "(&"+s.sc.userFilter+f.String()+")", s.sc.userAttrs(), func(e *goldap.Entry) {
			found[s.sc.entryID(e)] = true
			ch.users = append(ch.users, e)
		})
		if err != nil {
			return nil, fmt.Errorf("read changed users: %w", err)
		}
		err = s.readByFilter(ctx, sess, "(&"+s.sc.groupFilter+f.String()+")", s.sc.groupAttrs(), func(e *goldap.Entry) {
			found[s.sc.entryID(e)] = true
			ch.groups = append(ch.groups, e)
		})
		if err != nil {
			return nil, fmt.Errorf("read changed groups: %w", err)
		}
	}
	return found, nil
}

// usnChanges reads users and groups whose uSNChanged is above the cursor's.
// It cannot see deletions; the periodic full listing finds them.
func (s *Source) usnChanges(ctx context.Context, sess *session, cur cursorData, ch *changeSet) (cursorData, error) {
	inv, err := s.invocationID(ctx, sess)
	if err != nil {
		return cursorData{}, err
	}
	if inv != cur.InvocationID {
		return cursorData{}, fmt.Errorf("%w: domain controller changed (invocationId %s, cursor made on %s)", connectors.ErrResync, inv, cur.InvocationID)
	}
	dse, err := readRootDSE(sess.conn)
	if err != nil {
		return cursorData{}, ctxErr(ctx, err)
	}
	if dse.HighestCommittedUSN < cur.USN {
		return cursorData{}, fmt.Errorf("%w: USN went backwards (%d < %d): restored domain controller", connectors.ErrResync, dse.HighestCommittedUSN, cur.USN)
	}
	if dse.HighestCommittedUSN == cur.USN {
		return cur, nil
	}
	usn := fmt.Sprintf("(uSNChanged>=%d)", cur.USN+1)
	if err := s.readByFilter(ctx, sess, "(&"+s.sc.userFilter+usn+")", s.sc.userAttrs(), func(e *goldap.Entry) {
		ch.users = append(ch.users, e)
	}); err != nil {
		return cursorData{}, fmt.Errorf("read changed users: %w", err)
	}
	if err := s.readByFilter(ctx, sess, "(&"+s.sc.groupFilter+usn+")", s.sc.groupAttrs(), func(e *goldap.Entry) {
		ch.groups = append(ch.groups, e)
	}); err != nil {
		return cursorData{}, fmt.Errorf("read changed groups: %w", err)
	}
	return cursorData{InvocationID: inv, USN: dse.HighestCommittedUSN}, nil
}
