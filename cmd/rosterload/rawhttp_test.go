package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRawClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-Done")
			w.Write([]byte("part one,"))
			w.(http.Flusher).Flush()
			w.Write([]byte(" part two"))
			w.Header().Set("X-Done", "yes")
		case "/close":
			w.Header().Set("Connection", "close")
			w.Write([]byte("bye"))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Location", "/x")
			w.WriteHeader(http.StatusCreated)
			w.Write(append([]byte(r.Method+" "), body...))
		}
	}))
	defer srv.Close()
	p, err := newRawPool(srv.URL, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Several rounds over kept-alive connections, each kind of answer.
	for i := 0; i < 3; i++ {
		res, err := p.do(ctx, "POST", "/users?x=1", "tok", []byte(`{"a":1}`))
		if err != nil || res.status != 201 || string(res.body) != `POST {"a":1}` || res.header.Get("Location") != "/x" {
			t.Fatalf("post: %v %+v", err, res)
		}
		res, err = p.do(ctx, "GET", "/chunked", "tok", nil)
		if err != nil || res.status != 200 || string(res.body) != "part one, part two" {
			t.Fatalf("chunked: %v %+v", err, res)
		}
		res, err = p.do(ctx, "PATCH", "/empty", "tok", nil)
		if err != nil || res.status != 204 || len(res.body) != 0 {
			t.Fatalf("204: %v %+v", err, res)
		}
		res, err = p.do(ctx, "GET", "/close", "tok", nil)
		if err != nil || string(res.body) != "bye" {
			t.Fatalf("close: %v %+v", err, res)
		}
		res, err = p.do(ctx, "GET", "/", "wrong", nil)
		if err != nil || res.status != 401 {
			t.Fatalf("401: %v %+v", err, res)
		}
	}
	if _, err := newRawPool("https://example.com", 1); err == nil || !strings.Contains(err.Error(), "plain http") {
		t.Fatalf("https accepted: %v", err)
	}
}
