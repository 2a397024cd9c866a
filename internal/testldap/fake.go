package testldap

import (
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
)

// Fake is a minimal in-process LDAP server that behaves like Active
// Directory where Samba doesn't: it caps page sizes (MaxPageSize, AD's
// 1000), answers unpaged searches over that cap with sizeLimitExceeded, and
// returns large multi-valued attributes in ranges (MaxValRange, AD's
// 1500: "member;range=0-1499", then "member;range=1500-*" on request).
// Faults can be switched on: Empty (searches succeed with no entries) and
// DropAfter (a connection is closed after sending that many entries).
//
// It understands bind (any DN with Password, or anonymous), unbind and
// search with the filters and, or, not, equality, presence and >=, and
// the paged-results control.
type Fake struct {
	URL         string
	Password    string
	MaxPageSize int
	MaxValRange int

	// Empty makes every search but the root DSE's succeed with no entries.
	Empty atomic.Bool
	// DropAfter closes a connection once it has sent this many entries
	// (0: never).
	DropAfter atomic.Int64
	// Searches, PagedSearches and RangeReads count requests.
	Searches, PagedSearches, RangeReads atomic.Int64

	mu      sync.RWMutex
	root    *FakeEntry
	entries []*FakeEntry
	ln      net.Listener
	wg      sync.WaitGroup
}

// FakeEntry is an entry of the fake directory.
type FakeEntry struct {
	DN    string
	Attrs map[string][][]byte
}

// Set sets attribute name to string values.
func (e *FakeEntry) Set(name string, values ...string) *FakeEntry {
	if e.Attrs == nil {
		e.Attrs = map[string][][]byte{}
	}
	vs := make([][]byte, len(values))
	for i, v := range values {
		vs[i] = []byte(v)
	}
	e.Attrs[name] = vs
	return e
}

// SetRaw sets attribute name to binary values.
func (e *FakeEntry) SetRaw(name string, values ...[]byte) *FakeEntry {
	if e.Attrs == nil {
		e.Attrs = map[string][][]byte{}
	}
	e.Attrs[name] = values
	return e
}

func (e *FakeEntry) get(name string) ([][]byte, string) {
	for k, v := range e.Attrs {
		if strings.EqualFold(k, name) {
			return v, k
		}
	}
	return nil, ""
}

// StartFake starts a fake AD-like server on a loopback port; it stops at
// the test's end. Its root DSE says Active Directory.
func StartFake(t testing.TB) *Fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{URL: "ldap://" + ln.Addr().String(), Password: "fake-secret", MaxPageSize: 1000, MaxValRange: 1500, ln: ln}
	f.root = (&FakeEntry{DN: ""}).
		Set("supportedCapabilities", "1.2.840.113556.1.4.800").
		Set("supportedControl", "1.2.840.113556.1.4.319").
		Set("defaultNamingContext", "DC=fake,DC=test").
		Set("highestCommittedUSN", "1000")
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(f.Close)
	return f
}

// Add adds entries.
func (f *Fake) Add(es ...*FakeEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, es...)
}

// Close stops the server and closes its connections.
func (f *Fake) Close() {
	f.ln.Close()
	f.wg.Wait()
}

func (f *Fake) serve() {
	defer f.wg.Done()
	var conns sync.WaitGroup
	var mu sync.Mutex
	open := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	}()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		open[c] = true
		mu.Unlock()
		conns.Add(1)
		go func() {
			defer conns.Done()
			f.handle(c)
			c.Close()
			mu.Lock()
			delete(open, c)
			mu.Unlock()
		}()
	}
}

const (
	appBindReq    = 0
	appBindResp   = 1
	appUnbindReq  = 2
	appSearchReq  = 3
	appSearchEnt  = 4
	appSearchDone = 5
	appExtReq     = 23
	appExtResp    = 24
	pagingOID     = "1.2.840.113556.1.4.319"
)

type fakeConn struct {
	f    *Fake
	c    net.Conn
	sent int64
}

func (f *Fake) handle(c net.Conn) {
	fc := &fakeConn{f: f, c: c}
	for {
		p, err := ber.ReadPacket(c)
		if err != nil {
			return
		}
		if len(p.Children) < 2 {
			return
		}
		id, _ := p.Children[0].Value.(int64)
		op := p.Children[1]
		var ctrls []*ber.Packet
		if len(p.Children) > 2 {
			ctrls = p.Children[2].Children
		}
		switch op.Tag {
		case appBindReq:
			code := 0
			if len(op.Children) >= 3 {
				name, _ := op.Children[1].Value.(string)
				pw := string(op.Children[2].Data.Bytes())
				if name != "" && pw != f.Password {
					code = 49
				}
			}
			if fc.write(fc.result(id, appBindResp, code, "", nil)) != nil {
				return
			}
		case appUnbindReq:
			return
		case appSearchReq:
			if !fc.search(id, op, ctrls) {
				return
			}
		case appExtReq:
			if fc.write(fc.result(id, appExtResp, 2, "not supported", nil)) != nil {
				return
			}
		default:
			// abandon and others: no answer
		}
	}
}

func (fc *fakeConn) write(p *ber.Packet) error {
	_, err := fc.c.Write(p.Bytes())
	return err
}

func envelope(id int64) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	return p
}

func (fc *fakeConn) result(id int64, tag ber.Tag, code int, msg string, ctrls []*ber.Packet) *ber.Packet {
	p := envelope(id)
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, msg, ""))
	p.AppendChild(r)
	if len(ctrls) > 0 {
		cs := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "")
		for _, c := range ctrls {
			cs.AppendChild(c)
		}
		p.AppendChild(cs)
	}
	return p
}

func pagingControl(size int, cookie string) *ber.Packet {
	c := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	c.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, pagingOID, ""))
	val := ber.Encode(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, nil, "")
	seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	seq.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(size), ""))
	ck := ber.Encode(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, nil, "")
	ck.Value = cookie
	ck.Data.Write([]byte(cookie))
	seq.AppendChild(ck)
	val.AppendChild(seq)
	c.AppendChild(val)
	return c
}

// search answers one search; false means the connection was dropped.
func (fc *fakeConn) search(id int64, op *ber.Packet, ctrls []*ber.Packet) bool {
	f := fc.f
	if len(op.Children) < 8 {
		return fc.write(fc.result(id, appSearchDone, 2, "bad search", nil)) == nil
	}
	base, _ := op.Children[0].Value.(string)
	scope, _ := op.Children[1].Value.(int64)
	filter := op.Children[6]
	var attrs []string
	for _, a := range op.Children[7].Children {
		s, _ := a.Value.(string)
		attrs = append(attrs, s)
	}
	f.Searches.Add(1)

	paged, pageSize, offset := false, 0, 0
	for _, c := range ctrls {
		if len(c.Children) == 0 {
			continue
		}
		if oid, _ := c.Children[0].Value.(string); oid != pagingOID {
			continue
		}
		v := c.Children[len(c.Children)-1]
		inner, err := ber.DecodePacketErr(v.Data.Bytes())
		if err != nil || len(inner.Children) < 2 {
			return fc.write(fc.result(id, appSearchDone, 2, "bad paging control", nil)) == nil
		}
		paged = true
		n, _ := inner.Children[0].Value.(int64)
		pageSize = int(n)
		if ck := inner.Children[1].Data.Bytes(); len(ck) > 0 {
			offset, _ = strconv.Atoi(string(ck))
		}
		f.PagedSearches.Add(1)
	}

	var matched []*FakeEntry
	if base == "" && scope == 0 {
		matched = []*FakeEntry{f.root}
	} else if !f.Empty.Load() {
		f.mu.RLock()
		for _, e := range f.entries {
			if inFakeScope(base, scope, e.DN) && fakeMatch(filter, e) {
				matched = append(matched, e)
			}
		}
		f.mu.RUnlock()
	}
	limit := len(matched)
	code := 0
	var done []*ber.Packet
	if paged {
		if pageSize <= 0 || pageSize > f.MaxPageSize {
			pageSize = f.MaxPageSize
		}
		if offset > len(matched) {
			offset = len(matched)
		}
		matched = matched[offset:]
		limit = min(pageSize, len(matched))
		next := ""
		if limit < len(matched) {
			next = strconv.Itoa(offset + limit)
		}
		done = append(done, pagingControl(0, next))
	} else if limit > f.MaxPageSize {
		limit, code = f.MaxPageSize, 4 // sizeLimitExceeded, as AD answers
	}
	for _, e := range matched[:limit] {
		if drop := f.DropAfter.Load(); drop > 0 && fc.sent >= drop {
			fc.c.Close()
			return false
		}
		if fc.write(fc.entry(id, e, attrs)) != nil {
			return false
		}
		fc.sent++
	}
	return fc.write(fc.result(id, appSearchDone, code, "", done)) == nil
}

func (fc *fakeConn) entry(id int64, e *FakeEntry, attrs []string) *ber.Packet {
	p := envelope(id)
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, appSearchEnt, nil, "")
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.DN, ""))
	list := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	add := func(name string, vals [][]byte) {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, ""))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		for _, v := range vals {
			o := ber.Encode(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, nil, "")
			o.Value = string(v)
			o.Data.Write(v)
			set.AppendChild(o)
		}
		a.AppendChild(set)
		list.AppendChild(a)
	}
	want := attrs
	all := len(attrs) == 0
	for _, a := range attrs {
		if a == "*" {
			all = true
		}
	}
	if all {
		want = nil
		for k := range e.Attrs {
			want = append(want, k)
		}
	}
	maxRange := fc.f.MaxValRange
	for _, a := range want {
		name, opt, _ := strings.Cut(a, ";")
		vals, real := e.get(name)
		if real == "" {
			continue
		}
		if strings.HasPrefix(strings.ToLower(opt), "range=") {
			fc.f.RangeReads.Add(1)
			lo, _, _ := strings.Cut(opt[len("range="):], "-")
			from, err := strconv.Atoi(lo)
			if err != nil || from > len(vals) {
				continue
			}
			to := len(vals)
			if maxRange > 0 && to-from > maxRange {
				to = from + maxRange
			}
			if to == len(vals) {
				add(fmt.Sprintf("%s;range=%d-*", real, from), vals[from:to])
			} else {
				add(fmt.Sprintf("%s;range=%d-%d", real, from, to-1), vals[from:to])
			}
			continue
		}
		if maxRange > 0 && len(vals) > maxRange {
			add(fmt.Sprintf("%s;range=0-%d", real, maxRange-1), vals[:maxRange])
			continue
		}
		add(real, vals)
	}
	r.AppendChild(list)
	p.AppendChild(r)
	return p
}

func inFakeScope(base string, scope int64, dn string) bool {
	b, d := strings.ToLower(strings.ReplaceAll(base, " ", "")), strings.ToLower(strings.ReplaceAll(dn, " ", ""))
	switch scope {
	case 0:
		return b == d
	case 1:
		_, parent, _ := strings.Cut(d, ",")
		return parent == b
	default:
		return d == b || b == "" || strings.HasSuffix(d, ","+b)
	}
}

func fakeMatch(f *ber.Packet, e *FakeEntry) bool {
	switch f.Tag {
	case 0: // and
		for _, c := range f.Children {
			if !fakeMatch(c, e) {
				return false
			}
		}
		return true
	case 1: // or
		for _, c := range f.Children {
			if fakeMatch(c, e) {
				return true
			}
		}
		return false
	case 2: // not
		return len(f.Children) == 1 && !fakeMatch(f.Children[0], e)
	case 3, 5: // equality, >=
		if len(f.Children) != 2 {
			return false
		}
		name := string(f.Children[0].Data.Bytes())
		want := f.Children[1].Data.Bytes()
		vals, _ := e.get(name)
		if strings.EqualFold(name, "distinguishedName") {
			vals = [][]byte{[]byte(e.DN)}
		}
		for _, v := range vals {
			if f.Tag == 3 && (bytes.Equal(v, want) || strings.EqualFold(string(v), string(want))) {
				return true
			}
			if f.Tag == 5 {
				a, err1 := strconv.ParseInt(string(v), 10, 64)
				b, err2 := strconv.ParseInt(string(want), 10, 64)
				if err1 == nil && err2 == nil && a >= b {
					return true
				}
			}
		}
		return false
	case 7: // present
		name := string(f.Data.Bytes())
		if strings.EqualFold(name, "objectClass") {
			return true
		}
		vals, _ := e.get(name)
		return len(vals) > 0
	}
	return false
}
