package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// WebSession is a signed-in session of the admin web page.
type WebSession struct {
	// IDHash is the SHA-256 (hex) of the session cookie's value.
	IDHash string
	// Principal is what the session acts as, as the web package encodes it.
	Principal string
	// TokenID names the admin token the session signed in with.
	TokenID string
	CSRF    string
	// Flash is what the next page shows once, encrypted by the web package.
	Flash      string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

const sessionCols = "id_hash, principal, token_id, csrf, flash, created_at, last_seen_at, expires_at"

// CreateWebSession stores a new session.
func (s *Store) CreateWebSession(ctx context.Context, ws *WebSession) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "INSERT INTO web_sessions ("+sessionCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			ws.IDHash, ws.Principal, ws.TokenID, ws.CSRF, ws.Flash, micros(ws.CreatedAt), micros(ws.LastSeenAt), micros(ws.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create web session: %w", err)
	}
	return nil
}

// GetWebSession reads a session by its id hash; an expired one is
// ErrNotFound.
func (r *reads) GetWebSession(ctx context.Context, idHash string, now time.Time) (*WebSession, error) {
	var ws WebSession
	var created, seen, expires int64
	err := r.on.queryRow(ctx, "SELECT "+sessionCols+" FROM web_sessions WHERE id_hash = ? AND expires_at > ?", idHash, micros(now)).
		Scan(&ws.IDHash, &ws.Principal, &ws.TokenID, &ws.CSRF, &ws.Flash, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read web session: %w", err)
	}
	ws.CreatedAt, ws.LastSeenAt, ws.ExpiresAt = fromMicros(created), fromMicros(seen), fromMicros(expires)
	return &ws, nil
}

// TouchWebSession records activity on a session and moves its expiry.
func (s *Store) TouchWebSession(ctx context.Context, idHash string, seen, expires time.Time) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "UPDATE web_sessions SET last_seen_at = ?, expires_at = ? WHERE id_hash = ?", micros(seen), micros(expires), idHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch web session: %w", err)
	}
	return nil
}

// SetWebSessionFlash replaces what the session's next page shows once ("" clears it).
func (s *Store) SetWebSessionFlash(ctx context.Context, idHash, flash string) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "UPDATE web_sessions SET flash = ? WHERE id_hash = ?", flash, idHash)
		return err
	})
	if err != nil {
		return fmt.Errorf("set web session flash: %w", err)
	}
	return nil
}

// DeleteWebSession ends a session.
func (s *Store) DeleteWebSession(ctx context.Context, idHash string) error {
	return s.deleteWebSessions(ctx, "id_hash = ?", idHash)
}

// DeleteWebSessionsOfToken ends every session signed in with an admin
// token (called when the token is deleted).
func (s *Store) DeleteWebSessionsOfToken(ctx context.Context, tokenID string) error {
	if tokenID == "" {
		return nil // operator sessions have no token id: never all at once
	}
	return s.deleteWebSessions(ctx, "token_id = ?", tokenID)
}

// DeleteExpiredWebSessions removes sessions that expired before now.
func (s *Store) DeleteExpiredWebSessions(ctx context.Context, now time.Time) error {
	return s.deleteWebSessions(ctx, "expires_at <= ?", micros(now))
}

func (s *Store) deleteWebSessions(ctx context.Context, where string, arg any) error {
	err := s.WithTx(ctx, func(tx *Tx) error {
		_, err := tx.exec(ctx, "DELETE FROM web_sessions WHERE "+where, arg)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete web sessions: %w", err)
	}
	return nil
}
