package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// rawPool is a lean HTTP/1.1 keep-alive client for the measured requests.
// The load tool usually shares the CPU with roster, so every microsecond
// the client spends is taken from the server being measured; net/http's
// client spends a large share of a small request's budget. This one writes
// the request with one buffered write and parses only the status line, the
// headers and a Content-Length or chunked body, as wrk or h2load would. It
// is still a strict client: a malformed answer is an error.
type rawPool struct {
	addr  string // host:port
	host  string // Host header
	conns chan *rawConn
}

type rawConn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func newRawPool(base string, size int) (*rawPool, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("the raw client speaks plain http only, not %q (use -http-client go)", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &rawPool{addr: addr, host: u.Host, conns: make(chan *rawConn, size)}, nil
}

func (p *rawPool) get(ctx context.Context) (*rawConn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	default:
	}
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	return &rawConn{c: c, br: bufio.NewReaderSize(c, 32<<10), bw: bufio.NewWriterSize(c, 8<<10)}, nil
}

func (p *rawPool) put(c *rawConn) {
	select {
	case p.conns <- c:
	default:
		c.c.Close()
	}
}

// do sends one request and reads the whole answer. A request that fails on
// a reused connection before any answer byte arrived is retried once on a
// new one (the server may have closed an idle connection).
func (p *rawPool) do(ctx context.Context, method, target, token string, body []byte) (*response, error) {
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return nil, err
		}
		res, started, err := c.roundTrip(ctx, p.host, method, target, token, body)
		if err != nil {
			c.c.Close()
			if !started && attempt == 0 {
				continue
			}
			return nil, err
		}
		if res.header.Get("Connection") == "close" {
			c.c.Close()
		} else {
			p.put(c)
		}
		return res, nil
	}
}

func (c *rawConn) roundTrip(ctx context.Context, host, method, target, token string, body []byte) (res *response, started bool, err error) {
	if dl, ok := ctx.Deadline(); ok {
		c.c.SetDeadline(dl)
	} else {
		c.c.SetDeadline(time.Now().Add(60 * time.Second))
	}
	w := c.bw
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(target)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\nUser-Agent: rosterload\r\nAccept: application/scim+json\r\nAuthorization: Bearer ")
	w.WriteString(token)
	if body != nil {
		w.WriteString("\r\nContent-Type: application/scim+json\r\nContent-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
	} else if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		w.WriteString("\r\nContent-Length: 0")
	}
	w.WriteString("\r\n\r\n")
	w.Write(body)
	if err := w.Flush(); err != nil {
		return nil, false, err
	}
	tp := textproto.NewReader(c.br)
	line, err := tp.ReadLine()
	if err != nil {
		return nil, false, err
	}
	proto, rest, ok := strings.Cut(line, " ")
	if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(rest) < 3 {
		return nil, true, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(rest[:3])
	if err != nil {
		return nil, true, fmt.Errorf("malformed status line %q", line)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, true, fmt.Errorf("read headers: %w", err)
	}
	h := http.Header(hdr)
	var b []byte
	switch {
	case method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified || status < 200:
	case strings.EqualFold(h.Get("Transfer-Encoding"), "chunked"):
		b, err = readChunked(c.br)
	case h.Get("Content-Length") != "":
		n, perr := strconv.Atoi(h.Get("Content-Length"))
		if perr != nil || n < 0 {
			return nil, true, fmt.Errorf("bad Content-Length %q", h.Get("Content-Length"))
		}
		b = make([]byte, n)
		_, err = io.ReadFull(c.br, b)
	default:
		return nil, true, errors.New("answer without length: not supported on a kept-alive connection")
	}
	if err != nil {
		return nil, true, fmt.Errorf("read body: %w", err)
	}
	return &response{status: status, body: b, header: h}, true, nil
}

func readChunked(br *bufio.Reader) ([]byte, error) {
	b, err := io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		return nil, err
	}
	// Trailers, up to the empty line that ends the message.
	if _, err := textproto.NewReader(br).ReadMIMEHeader(); err != nil {
		return nil, err
	}
	return b, nil
}
