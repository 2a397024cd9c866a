package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/roster-dev/roster/internal/testenv"
	"github.com/roster-dev/roster/store"
)

func TestWebSessions(t *testing.T) {
	for _, e := range testenv.Engines() {
		t.Run(e.Name, func(t *testing.T) {
			s := testenv.OpenStore(t, e)
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Microsecond)
			a := &store.WebSession{IDHash: "h1", Principal: `{"kind":"operator"}`, TokenID: "tok1", CSRF: "c1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
			b := &store.WebSession{IDHash: "h2", Principal: `{"kind":"team"}`, TokenID: "tok2", CSRF: "c2", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Minute)}
			for _, ws := range []*store.WebSession{a, b} {
				if err := s.CreateWebSession(ctx, ws); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.GetWebSession(ctx, "h1", now)
			if err != nil || got.Principal != a.Principal || got.CSRF != "c1" || !got.ExpiresAt.Equal(a.ExpiresAt) {
				t.Fatalf("get = %+v, %v; want %+v", got, err, a)
			}
			// Past its expiry a session is not found.
			if _, err := s.GetWebSession(ctx, "h2", now.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("expired session: err %v, want ErrNotFound", err)
			}
			if err := s.SetWebSessionFlash(ctx, "h1", "sealed"); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetWebSession(ctx, "h1", now); err != nil || got.Flash != "sealed" {
				t.Fatalf("flash = %+v, %v; want sealed", got, err)
			}
			if err := s.TouchWebSession(ctx, "h2", now.Add(time.Minute), now.Add(3*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetWebSession(ctx, "h2", now.Add(2*time.Minute)); err != nil {
				t.Fatalf("touched session: %v", err)
			}
			if err := s.DeleteWebSessionsOfToken(ctx, "tok2"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetWebSession(ctx, "h2", now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("session of a deleted token: err %v, want ErrNotFound", err)
			}
			if err := s.DeleteExpiredWebSessions(ctx, now.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetWebSession(ctx, "h1", now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("pruned session: err %v, want ErrNotFound", err)
			}
			if err := s.CreateWebSession(ctx, a); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteWebSession(ctx, "h1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetWebSession(ctx, "h1", now); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("deleted session: err %v, want ErrNotFound", err)
			}
		})
	}
}
