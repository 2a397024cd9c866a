package apiclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Transport is an http.RoundTripper that sends each request through a
// Client, so requests made by another library (x/oauth2's token requests)
// get the same bounded concurrency, retries and counts. An answer that is
// not 2xx comes back as a response, not an error, so that library can read
// its error body (an OAuth error).
type Transport struct{ Client *Client }

// RoundTrip sends req; its body is read once and replayed on every attempt.
func (t Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	resp, err := t.Client.Do(req.Context(), func(ctx context.Context) (*http.Request, error) {
		r := req.Clone(ctx)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		return r, nil
	})
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return asResponse(req, se.Status, se.Header, se.Body), nil
	case err != nil:
		return nil, err
	}
	return asResponse(req, resp.Status, resp.Header, resp.Body), nil
}

func asResponse(req *http.Request, status int, h http.Header, body []byte) *http.Response {
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", status, http.StatusText(status)),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
}
