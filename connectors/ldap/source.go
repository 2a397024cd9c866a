package ldap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/roster-dev/roster/connectors"
)

// Cursor kinds.
const (
	KindDirSync   = "dirsync"
	KindUSN       = "usn"
	KindSyncrepl  = "syncrepl"
	KindTimestamp = "timestamp"
)

var (
	_ connectors.DeltaSource = (*Source)(nil)
	_ connectors.Closer      = (*Source)(nil)
)

// Source reads one directory. It is safe for use by one poll at a time;
// concurrent calls are serialised.
type Source struct {
	cfg  Config
	log  *slog.Logger
	base *goldap.DN

	poll sync.Mutex // one Full/Changes at a time

	mu     sync.Mutex
	sess   *session
	flavor string
	sc     *schema

	// idx maps member DNs to ids. It is complete for the directory as of
	// idxCursor (the cursor the last successful poll returned) and is used
	// only when a poll continues from exactly that cursor; otherwise member
	// DNs are looked up in the directory.
	idx       *dnIndex
	idxCursor string

	now func() time.Time
}

type dnIndex struct {
	byDN map[string]memberRef
	dnOf map[string]string // id -> normalized DN
}

func newIndex() *dnIndex {
	return &dnIndex{byDN: map[string]memberRef{}, dnOf: map[string]string{}}
}

func (x *dnIndex) put(dn string, r memberRef) {
	if old, ok := x.dnOf[r.id]; ok && old != dn {
		if cur, ok := x.byDN[old]; ok && cur.id == r.id {
			delete(x.byDN, old)
		}
	}
	x.byDN[dn] = r
	x.dnOf[r.id] = dn
}

func (x *dnIndex) remove(id string) (memberRef, bool) {
	dn, ok := x.dnOf[id]
	if !ok {
		return memberRef{}, false
	}
	delete(x.dnOf, id)
	r, ok := x.byDN[dn]
	if ok && r.id == id {
		delete(x.byDN, dn)
	}
	return r, ok
}

// Open checks cfg, connects to the first reachable server (binding as the
// service account) and detects the flavor when cfg.Flavor is empty.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, _ := goldap.ParseDN(cfg.BaseDN)
	s := &Source{cfg: cfg, log: log.With("connector", "ldap"), base: base, flavor: cfg.Flavor, now: time.Now}
	sess, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.Flavor == "" {
		s.flavor = sess.rootDN.Flavor
	}
	s.sc = newSchema(&s.cfg, s.flavor)
	return s, nil
}

// Flavor is active_directory or openldap (configured or detected).
func (s *Source) Flavor() string { return s.flavor }

// Close drops the connection.
func (s *Source) Close() error {
	s.mu.Lock()
	sess := s.sess
	s.sess = nil
	s.mu.Unlock()
	if sess != nil {
		return sess.conn.Close()
	}
	return nil
}

// cursorData is the JSON cursor. Its kind says which incremental method
// made it.
type cursorData struct {
	Kind string `json:"kind"`
	// Config is a digest of the settings that shape the listing; another
	// digest makes the cursor unusable.
	Config string `json:"config"`
	// FullAt is when the full listing this cursor continues began; it
	// is kept for diagnosis (the poller times full listings itself).
	FullAt time.Time `json:"full_at"`
	Server string    `json:"server,omitempty"`
	// Active Directory.
	InvocationID string `json:"invocation_id,omitempty"`
	USN          int64  `json:"usn,omitempty"`
	DirSync      []byte `json:"dirsync_cookie,omitempty"`
	DirSyncFlags int64  `json:"dirsync_flags,omitempty"`
	// OpenLDAP. BaseUUID is the base entry's entryUUID when the cursor
	// was made: a server rebuilt or replaced at the same URL has the same
	// base DN but a new entryUUID, and its sync cookies or timestamps say
	// nothing about what we hold.
	BaseUUID    string `json:"base_uuid,omitempty"`
	UserCookie  []byte `json:"user_cookie,omitempty"`
	GroupCookie []byte `json:"group_cookie,omitempty"`
	Since       string `json:"since,omitempty"` // generalized time
}

// CursorKind returns the kind of a cursor ("dirsync", "usn", "syncrepl",
// "timestamp"), or "" when it is not one of this package's cursors.
func CursorKind(cursor json.RawMessage) string {
	var c cursorData
	if json.Unmarshal(cursor, &c) != nil {
		return ""
	}
	return c.Kind
}

func (s *Source) configDigest() string {
	sc := s.sc
	h := sha256.New()
	for _, v := range []string{s.flavor, normDN(s.cfg.BaseDN), sc.userFilter, sc.groupFilter, sc.id, sc.username, sc.email,
		sc.given, sc.family, sc.display, sc.groupName, strings.Join(sc.members, ","), fmt.Sprint(sc.nested)} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// withSession runs fn on a live session, redialing (and retrying fn once)
// when the connection broke. ctx cancellation closes the connection.
func (s *Source) withSession(ctx context.Context, fn func(*session) error) error {
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var sess *session
		sess, err = s.connect(ctx)
		if err != nil {
			return err
		}
		stop := closeOnDone(ctx, sess.conn)
		err = fn(sess)
		stop()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			s.drop(sess)
			return err
		}
		if !isNetworkErr(err) && !sess.conn.IsClosing() {
			return err
		}
		s.log.Warn("ldap: connection failed during poll; reconnecting", "url", sess.url, "err", err)
		s.drop(sess)
	}
	return err
}

// Full lists every user and group. The cursor it returns continues with the
// best incremental method the server allows.
func (s *Source) Full(ctx context.Context) (*connectors.Snapshot, json.RawMessage, error) {
	s.poll.Lock()
	defer s.poll.Unlock()
	return s.listAll(ctx)
}

// listAll lists the whole directory in a session and keeps its DN index
// for the next Changes (dropping it when the listing fails). The caller
// holds s.poll.
func (s *Source) listAll(ctx context.Context) (*connectors.Snapshot, json.RawMessage, error) {
	var (
		snap *connectors.Snapshot
		cur  json.RawMessage
		idx  *dnIndex
	)
	err := s.withSession(ctx, func(sess *session) error {
		var err error
		snap, cur, idx, err = s.full(ctx, sess)
		return err
	})
	if err != nil {
		s.idx, s.idxCursor = nil, ""
		return nil, nil, err
	}
	s.idx, s.idxCursor = idx, string(cur)
	return snap, cur, nil
}

func (s *Source) full(ctx context.Context, sess *session) (*connectors.Snapshot, json.RawMessage, *dnIndex, error) {
	start := s.now()
	// Take the incremental starting point first: whatever changes while we
	// list is seen again by the next Changes.
	cur, err := s.startCursor(ctx, sess)
	if err != nil {
		return nil, nil, nil, err
	}
	snap, idx, maxStamp, err := s.list(ctx, sess)
	if err != nil {
		return nil, nil, nil, err
	}
	if cur.Kind == KindTimestamp {
		cur.Since = timestampCursor(maxStamp, s.now().Sub(start))
	}
	cur.FullAt = start.UTC()
	cur.Config = s.configDigest()
	cur.Server = sess.url
	raw, err := json.Marshal(cur)
	if err != nil {
		return nil, nil, nil, err
	}
	s.log.Debug("ldap: full listing", "url", sess.url, "users", len(snap.Users), "groups", len(snap.Groups),
		"skipped", len(snap.Skipped), "cursor", cur.Kind, "duration", s.now().Sub(start).Seconds())
	return snap, raw, idx, nil
}

// startCursor returns where incremental polls will start, choosing the
// method: DirSync, else uSNChanged (AD); syncrepl, else modifyTimestamp
// (OpenLDAP).
func (s *Source) startCursor(ctx context.Context, sess *session) (cursorData, error) {
	if s.flavor == FlavorActiveDirectory {
		inv, err := s.invocationID(ctx, sess)
		if err != nil {
			return cursorData{}, err
		}
		if sess.rootDN.Controls[oidDirSync] {
			cookie, flags, err := s.dirSyncStart(ctx, sess)
			if err == nil {
				return cursorData{Kind: KindDirSync, InvocationID: inv, DirSync: cookie, DirSyncFlags: flags}, nil
			}
			if !dirSyncDenied(err) {
				return cursorData{}, err
			}
			s.log.Warn("ldap: DirSync not permitted for the service account (needs \"Replicating Directory Changes\"); using uSNChanged polling",
				"err", err)
		}
		dse, err := readRootDSE(sess.conn)
		if err != nil {
			return cursorData{}, ctxErr(ctx, err)
		}
		return cursorData{Kind: KindUSN, InvocationID: inv, USN: dse.HighestCommittedUSN}, nil
	}
	base, err := s.baseUUID(ctx, sess)
	if err != nil {
		return cursorData{}, err
	}
	if sess.rootDN.Controls[oidSyncRequest] {
		uc, err := s.syncStart(ctx, sess, s.sc.userFilter)
		if err == nil {
			gc, err2 := s.syncStart(ctx, sess, s.sc.groupFilter)
			if err2 == nil {
				return cursorData{Kind: KindSyncrepl, BaseUUID: base, UserCookie: uc, GroupCookie: gc}, nil
			}
			err = err2
		}
		if ctx.Err() != nil || isNetworkErr(err) {
			return cursorData{}, err
		}
		s.log.Warn("ldap: sync (RFC 4533) refused; using modifyTimestamp polling", "err", err)
	}
	return cursorData{Kind: KindTimestamp, BaseUUID: base}, nil
}

// list reads all users then all groups, and resolves group members.
func (s *Source) list(ctx context.Context, sess *session) (*connectors.Snapshot, *dnIndex, string, error) {
	sc := s.sc
	snap := &connectors.Snapshot{}
	idx := newIndex()
	maxStamp := ""
	track := s.flavor != FlavorActiveDirectory
	stampOf := func(e *goldap.Entry) {
		if !track {
			return
		}
		if v := e.GetEqualFoldAttributeValue("modifyTimestamp"); v > maxStamp {
			maxStamp = v
		}
	}
	userAttrs := sc.userAttrs()
	groupAttrs := sc.groupAttrs()
	if track {
		userAttrs = append(userAttrs, "modifyTimestamp")
		groupAttrs = append(groupAttrs, "modifyTimestamp")
	}
	req := goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		sc.userFilter, userAttrs, nil)
	err := sess.pagedSearch(ctx, req, s.cfg.pageSize(), func(e *goldap.Entry) error {
		stampOf(e)
		u, skip := sc.user(e)
		if id := sc.entryID(e); id != "" {
			idx.put(normDN(e.DN), memberRef{id: id})
		}
		if skip != nil {
			snap.Skipped = append(snap.Skipped, *skip)
			return nil
		}
		snap.Users = append(snap.Users, u)
		return nil
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("list users: %w", err)
	}
	type pending struct {
		g   connectors.Group
		dns []string
	}
	var groups []pending
	req = goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		sc.groupFilter, groupAttrs, nil)
	err = sess.pagedSearch(ctx, req, s.cfg.pageSize(), func(e *goldap.Entry) error {
		stampOf(e)
		g, dns, skip, err := s.group(ctx, sess, e)
		if err != nil {
			return err
		}
		if skip != nil {
			snap.Skipped = append(snap.Skipped, *skip)
			return nil
		}
		idx.put(normDN(e.DN), memberRef{id: g.ExternalID, group: true})
		groups = append(groups, pending{g, dns})
		return nil
	})
	if err != nil {
		return nil, nil, "", fmt.Errorf("list groups: %w", err)
	}
	snap.Groups = make([]connectors.Group, 0, len(groups))
	for _, p := range groups {
		p.g.Members = s.resolve(idx.byDN, p.dns)
		snap.Groups = append(snap.Groups, p.g)
	}
	return snap, idx, maxStamp, nil
}

// group maps a group entry, fetching the remaining ranges of large member
// attributes. It returns the member DNs (normalized).
func (s *Source) group(ctx context.Context, sess *session, e *goldap.Entry) (connectors.Group, []string, *connectors.Skipped, error) {
	sc := s.sc
	id := sc.entryID(e)
	if id == "" {
		return connectors.Group{}, nil, &connectors.Skipped{ID: e.DN, Reason: fmt.Sprintf("no %s attribute (stable id)", sc.id)}, nil
	}
	var dns []string
	for _, attr := range sc.members {
		vals, err := sess.memberValues(ctx, e, attr)
		if err != nil {
			return connectors.Group{}, nil, nil, err
		}
		for _, v := range vals {
			dns = append(dns, normDN(memberDN(v)))
		}
	}
	name := e.GetEqualFoldAttributeValue(sc.groupName)
	if name == "" {
		name = e.DN
	}
	return connectors.Group{ExternalID: id, Name: name, Attrs: map[string]any{"dn": e.DN}}, dns, nil, nil
}

// resolve maps member DNs to ids; unknown DNs (not listed users/groups) are
// dropped, group members too when nested groups are off.
func (s *Source) resolve(byDN map[string]memberRef, dns []string) []string {
	out := make([]string, 0, len(dns))
	seen := make(map[string]bool, len(dns))
	for _, dn := range dns {
		r, ok := byDN[dn]
		if !ok || seen[r.id] || (r.group && !s.sc.nested) {
			continue
		}
		seen[r.id] = true
		out = append(out, r.id)
	}
	return out
}

// Changes lists what changed since cursor. It returns connectors.ErrResync
// when the cursor is unusable (other kind or settings, another domain
// controller, USN rollback, expired sync cookie). It never turns into a
// full listing by itself: the poller calls Full when one is due
// (full_sync_every).
func (s *Source) Changes(ctx context.Context, cursor json.RawMessage) (*connectors.Delta, json.RawMessage, error) {
	s.poll.Lock()
	defer s.poll.Unlock()
	var cur cursorData
	if err := json.Unmarshal(cursor, &cur); err != nil || cur.Kind == "" {
		return nil, nil, fmt.Errorf("%w: unreadable cursor", connectors.ErrResync)
	}
	if cur.Config != s.configDigest() {
		return nil, nil, fmt.Errorf("%w: the connection settings changed since the cursor was made", connectors.ErrResync)
	}
	switch cur.Kind {
	case KindDirSync, KindUSN:
		if s.flavor != FlavorActiveDirectory {
			return nil, nil, fmt.Errorf("%w: %s cursor for a %s directory", connectors.ErrResync, cur.Kind, s.flavor)
		}
	case KindSyncrepl, KindTimestamp:
		if s.flavor != FlavorOpenLDAP {
			return nil, nil, fmt.Errorf("%w: %s cursor for a %s directory", connectors.ErrResync, cur.Kind, s.flavor)
		}
	default:
		return nil, nil, fmt.Errorf("%w: unknown cursor kind %q", connectors.ErrResync, cur.Kind)
	}
	var idx *dnIndex
	if s.idx != nil && s.idxCursor == string(cursor) {
		idx = s.idx
	}
	s.idx, s.idxCursor = nil, ""

	var (
		d    *connectors.Delta
		next cursorData
	)
	err := s.withSession(ctx, func(sess *session) error {
		var err error
		ch := &changeSet{idx: idx}
		if cur.Kind == KindSyncrepl || cur.Kind == KindTimestamp {
			if err := s.checkBase(ctx, sess, cur); err != nil {
				return err
			}
		}
		switch cur.Kind {
		case KindDirSync:
			next, err = s.dirSyncChanges(ctx, sess, cur, ch)
		case KindUSN:
			next, err = s.usnChanges(ctx, sess, cur, ch)
		case KindSyncrepl:
			next, err = s.syncChanges(ctx, sess, cur, ch)
		case KindTimestamp:
			next, err = s.timestampChanges(ctx, sess, cur, ch)
		}
		if err != nil {
			return err
		}
		d, err = s.finish(ctx, sess, ch)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	next.Kind = cur.Kind
	next.Config = cur.Config
	next.FullAt = cur.FullAt
	next.Server = cur.Server
	if cur.Kind == KindSyncrepl || cur.Kind == KindTimestamp {
		next.BaseUUID = cur.BaseUUID
	}
	raw, err := json.Marshal(next)
	if err != nil {
		return nil, nil, err
	}
	if idx != nil {
		s.idx, s.idxCursor = idx, string(raw)
	}
	s.log.Debug("ldap: changes", "kind", cur.Kind, "users", len(d.Users), "groups", len(d.Groups),
		"deleted_users", len(d.DeletedUsers), "deleted_groups", len(d.DeletedGroups), "present", d.Present != nil)
	return d, raw, nil
}

// changeSet collects one incremental poll.
type changeSet struct {
	idx      *dnIndex // nil when member DNs must be looked up
	users    []*goldap.Entry
	groups   []*goldap.Entry
	delUsers map[string]bool
	delGrps  map[string]bool
	// delUnknown are ids that left the directory or the scope whose kind is
	// not known: reported in both lists.
	delUnknown map[string]bool
	// present, when not nil, is every id that still exists.
	present map[string]struct{}
}

func (ch *changeSet) deleted(id string, group, known bool) {
	if ch.delUsers == nil {
		ch.delUsers, ch.delGrps, ch.delUnknown = map[string]bool{}, map[string]bool{}, map[string]bool{}
	}
	if ch.idx != nil {
		if r, ok := ch.idx.remove(id); ok {
			group, known = r.group, true
		}
	}
	switch {
	case !known:
		ch.delUnknown[id] = true
	case group:
		ch.delGrps[id] = true
	default:
		ch.delUsers[id] = true
	}
}

// finish maps the changed entries, resolves group members and builds the
// Delta.
func (s *Source) finish(ctx context.Context, sess *session, ch *changeSet) (*connectors.Delta, error) {
	sc := s.sc
	d := &connectors.Delta{Present: ch.present}
	upserted := map[string]bool{}
	for _, e := range ch.users {
		id := sc.entryID(e)
		if id != "" && ch.idx != nil {
			ch.idx.put(normDN(e.DN), memberRef{id: id})
		}
		u, skip := sc.user(e)
		if skip != nil {
			d.Skipped = append(d.Skipped, *skip)
			continue
		}
		if upserted[u.ExternalID] {
			continue
		}
		upserted[u.ExternalID] = true
		d.Users = append(d.Users, u)
	}
	type pending struct {
		g   connectors.Group
		dns []string
	}
	var groups []pending
	for _, e := range ch.groups {
		g, dns, skip, err := s.group(ctx, sess, e)
		if err != nil {
			return nil, err
		}
		if skip != nil {
			d.Skipped = append(d.Skipped, *skip)
			continue
		}
		if upserted[g.ExternalID] {
			continue
		}
		upserted[g.ExternalID] = true
		if ch.idx != nil {
			ch.idx.put(normDN(e.DN), memberRef{id: g.ExternalID, group: true})
		}
		groups = append(groups, pending{g, dns})
	}
	// Resolve member DNs: from the index when it is current, else by
	// looking the DNs up.
	var byDN map[string]memberRef
	if ch.idx != nil {
		byDN = ch.idx.byDN
	} else {
		var all []string
		for _, p := range groups {
			all = append(all, p.dns...)
		}
		var err error
		byDN, err = s.lookupDNs(ctx, sess, all)
		if err != nil {
			return nil, err
		}
	}
	for _, p := range groups {
		p.g.Members = s.resolve(byDN, p.dns)
		d.Groups = append(d.Groups, p.g)
	}
	for id := range ch.delUsers {
		if !upserted[id] {
			d.DeletedUsers = append(d.DeletedUsers, id)
		}
	}
	for id := range ch.delGrps {
		if !upserted[id] {
			d.DeletedGroups = append(d.DeletedGroups, id)
		}
	}
	for id := range ch.delUnknown {
		if !upserted[id] && !ch.delUsers[id] && !ch.delGrps[id] {
			d.DeletedUsers = append(d.DeletedUsers, id)
			d.DeletedGroups = append(d.DeletedGroups, id)
		}
	}
	return d, nil
}

// lookupDNs finds which of dns are users or groups in scope, with their ids.
func (s *Source) lookupDNs(ctx context.Context, sess *session, dns []string) (map[string]memberRef, error) {
	out := map[string]memberRef{}
	uniq := dedupFold(dns)
	dnAttr := "entryDN"
	if s.flavor == FlavorActiveDirectory {
		dnAttr = "distinguishedName"
	}
	const batch = 100
	for i := 0; i < len(uniq); i += batch {
		part := uniq[i:min(i+batch, len(uniq))]
		var f strings.Builder
		f.WriteString("(|")
		for _, dn := range part {
			f.WriteString("(" + dnAttr + "=" + goldap.EscapeFilter(dn) + ")")
		}
		f.WriteString(")")
		for _, kind := range []struct {
			filter string
			group  bool
		}{{s.sc.userFilter, false}, {s.sc.groupFilter, true}} {
			req := goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
				"(&"+kind.filter+f.String()+")", []string{s.sc.id}, nil)
			err := sess.pagedSearch(ctx, req, s.cfg.pageSize(), func(e *goldap.Entry) error {
				if id := s.sc.entryID(e); id != "" {
					out[normDN(e.DN)] = memberRef{id: id, group: kind.group}
				}
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("look up group members: %w", err)
			}
		}
	}
	return out, nil
}

// listIDs lists the ids of everything matching filter (for Present sets).
func (s *Source) listIDs(ctx context.Context, sess *session, filter string, into map[string]struct{}) error {
	req := goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		filter, []string{s.sc.id}, nil)
	return sess.pagedSearch(ctx, req, s.cfg.pageSize(), func(e *goldap.Entry) error {
		if id := s.sc.entryID(e); id != "" {
			into[id] = struct{}{}
		}
		return nil
	})
}

// readByFilter reads entries matching filter in scope, paged.
func (s *Source) readByFilter(ctx context.Context, sess *session, filter string, attrs []string, fn func(*goldap.Entry)) error {
	req := goldap.NewSearchRequest(s.cfg.BaseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		filter, attrs, nil)
	return sess.pagedSearch(ctx, req, s.cfg.pageSize(), func(e *goldap.Entry) error {
		fn(e)
		return nil
	})
}
