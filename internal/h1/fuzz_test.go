package h1

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
)

// FuzzParseRequest: whatever the fast path accepts, net/http must accept
// too and read the same method, target, host and headers; everything else
// the fast path must hand off, never panic on.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /a?b=c HTTP/1.0\r\n\r\n",
		"HEAD /x%20y HTTP/1.1\r\nhost: h\r\nPragma: no-cache\r\n\r\n",
		"GET / HTTP/1.1\nHost: h\nConnection: close\n\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
		"GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: [::1]:80\r\nCookie: a=b; c=d\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		end := headerEnd([]byte(raw))
		if end == 0 {
			return
		}
		var got http.Request
		if err := parseRequest([]byte(raw[:end]), &got); err != nil {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw[:end])))
		if err != nil {
			t.Fatalf("fast path accepted what net/http refuses (%v): %q", err, raw[:end])
		}
		delete(want.Header, "Host")
		if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Host != want.Host ||
			got.URL.String() != want.URL.String() || got.ProtoMinor != want.ProtoMinor || got.Close != want.Close {
			t.Fatalf("fast %s %s %s host %q close %v; net/http %s %s %s host %q close %v",
				got.Method, got.RequestURI, got.Proto, got.Host, got.Close, want.Method, want.RequestURI, want.Proto, want.Host, want.Close)
		}
		if len(got.Header) != len(want.Header) {
			t.Fatalf("headers: fast %v, net/http %v", got.Header, want.Header)
		}
		for k, v := range want.Header {
			if strings.Join(got.Header[k], "\x00") != strings.Join(v, "\x00") {
				t.Fatalf("header %s: fast %q, net/http %q", k, got.Header[k], v)
			}
		}
	})
}
