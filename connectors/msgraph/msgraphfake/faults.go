package msgraphfake

// Fault kinds.
const (
	faultThrottle = iota
	faultFail
	faultShort
)

// A fault answers the Nth page request of an endpoint (counted from when
// the fault was set) in a way other than the directory would.
type fault struct {
	endpoint   string
	page       int // 1-based, relative to base
	base       int // served pages of endpoint when the fault was set
	kind       int
	times      int // answers left; < 0 means until cleared
	retryAfter string
}

// ThrottleNext answers the next n Graph requests (token and inner batch
// requests not counted) with 429 TooManyRequests and Retry-After.
func (s *Server) ThrottleNext(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleNext, s.throttleAfter = n, retryAfter
}

// ThrottlePage answers the page-th request for a page of endpoint (1 is
// the next one) with 429 and Retry-After, times times; the page is served
// when the client asks again after that.
func (s *Server) ThrottlePage(endpoint string, page, times int, retryAfter string) {
	s.addFault(&fault{endpoint: endpoint, page: page, kind: faultThrottle, times: times, retryAfter: retryAfter})
}

// FailPage answers the page-th page request of endpoint with 500, times
// times (< 0: every time, until ClearFaults).
func (s *Server) FailPage(endpoint string, page, times int) {
	s.addFault(&fault{endpoint: endpoint, page: page, kind: faultFail, times: times})
}

// ShortPage serves the page-th page of endpoint with fewer entries than
// the page should hold while its next link still skips past the missing
// ones: entries are lost, as a faulty proxy or service would lose them.
// A client can tell only where it asked for a page size ($top on
// EndpointMembers); Graph documents delta pages as varying in size, even
// empty with a next link, so there a short page looks like any other.
func (s *Server) ShortPage(endpoint string, page int) {
	s.addFault(&fault{endpoint: endpoint, page: page, kind: faultShort, times: 1})
}

// ClearFaults removes every fault not yet used up, and ThrottleNext.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.throttleNext = 0
}

func (s *Server) addFault(f *fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.base = s.served[f.endpoint]
	s.faults = append(s.faults, f)
}

// ExpireDeltaTokens makes every delta token issued so far expired: using
// one answers 400 syncStateNotFound, as Graph does after about seven days.
func (s *Server) ExpireDeltaTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deltaGen++
}

// ResetSync makes every delta token issued so far answer 410 Gone with a
// Location header holding the initial request, as Graph does when a
// tenant's sync state was reset.
func (s *Server) ResetSync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deltaGen++
	s.gone = true
}

// ReplayNextRound makes the next incremental round of users/delta and of
// groups/delta also return the changes the previous round returned, as
// Graph's documented replays do.
func (s *Server) ReplayNextRound() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replay["users"], s.replay["groups"] = true, true
}

// pageFault returns the fault for the next page request of endpoint, if
// any, and uses it up. Called with s.mu held.
func (s *Server) pageFault(endpoint string) *fault {
	next := s.served[endpoint] + 1
	for i, f := range s.faults {
		if f.endpoint != endpoint || f.times == 0 || next-f.base != f.page {
			continue
		}
		if f.times > 0 {
			f.times--
		}
		if f.times == 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		return f
	}
	return nil
}
