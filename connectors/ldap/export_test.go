package ldap

import "time"

// SetClock replaces the source's clock (tests of full_sync_every).
func SetClock(s *Source, now func() time.Time) { s.now = now }
