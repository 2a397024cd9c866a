// Package logtest captures what roster logs, for tests that check the lines themselves: a
// JSON slog handler at debug level into a buffer, and the checks every line must pass (one
// line each, keys in snake_case and not repeated).
package logtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
)

// Capture is a logger whose every line (debug and up) is kept.
type Capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
	// Also, when set, receives a copy of every line (ROSTER_TEST_LOG).
	Also io.Writer
}

// Logger returns a JSON logger at debug level writing into c.
func (c *Capture) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Write keeps p; the handler writes one whole line per call.
func (c *Capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Also != nil {
		_, _ = c.Also.Write(p)
	}
	return c.buf.Write(p)
}

// Text is everything logged so far.
func (c *Capture) Text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Line is one logged line, decoded; Raw is its text.
type Line struct {
	Raw   string
	Attrs map[string]any
}

// Msg is the line's message.
func (l Line) Msg() string { s, _ := l.Attrs["msg"].(string); return s }

// Level is the line's level (DEBUG, INFO, WARN, ERROR).
func (l Line) Level() string { s, _ := l.Attrs["level"].(string); return s }

// Str is the attribute key as a string ("" when absent).
func (l Line) Str(key string) string {
	v, ok := l.Attrs[key]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprint(v)
}

// Lines decodes every line logged so far. A line that is not one JSON object, or that
// repeats a key or has a key that is not snake_case, is returned in problems.
func (c *Capture) Lines() (lines []Line, problems []string) {
	for _, raw := range strings.Split(strings.TrimSuffix(c.Text(), "\n"), "\n") {
		if raw == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			problems = append(problems, fmt.Sprintf("not one JSON object (%v): %s", err, raw))
			continue
		}
		if p := CheckKeys(raw); p != "" {
			problems = append(problems, p+": "+raw)
		}
		lines = append(lines, Line{Raw: raw, Attrs: m})
	}
	return lines, problems
}

var snake = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// CheckKeys returns what is wrong with the keys of one JSON line, in any nested group: a key
// that appears twice in one object, or one that is not snake_case. "" means nothing.
func CheckKeys(raw string) string {
	dec := json.NewDecoder(strings.NewReader(raw))
	var walk func() string
	walk = func() string {
		tok, err := dec.Token()
		if err != nil {
			return "bad JSON: " + err.Error()
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return "bad JSON: " + err.Error()
				}
				k := kt.(string)
				if seen[k] {
					return fmt.Sprintf("key %q appears twice", k)
				}
				seen[k] = true
				if !snake.MatchString(k) {
					return fmt.Sprintf("key %q is not snake_case", k)
				}
				if p := walk(); p != "" {
					return p
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if p := walk(); p != "" {
					return p
				}
			}
			_, _ = dec.Token()
		}
		return ""
	}
	return walk()
}
