package edge

import (
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"testing"
)

// The hit path's shortcuts must answer what the general code answers.

func TestNormalizeHostShortcut(t *testing.T) {
	ref := func(h string) string {
		if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
			h = h[:i]
		}
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		return strings.Trim(h, "[]")
	}
	in := []string{"", "shop.cdn.test", "shop.cdn.test:8080", "Shop.CDN.test.", "shop.cdn.test.:80", "[::1]:80", "[::1]",
		"::1", "é.test", "É.TEST", "a..", ".", ":", "[", "]", "x]:1", "[x:1"}
	rnd := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ.:[]é0-"
	for range 20000 {
		b := make([]byte, rnd.IntN(8))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		in = append(in, string(b))
	}
	for _, h := range in {
		if got, want := normalizeHost(h), ref(h); got != want {
			t.Fatalf("normalizeHost(%q) = %q, want %q", h, got, want)
		}
	}
}

func TestClientIPShortcut(t *testing.T) {
	ref := func(a string) string {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return a
		}
		return host
	}
	in := []string{"", "1.2.3.4:5", "1.2.3.4", "1.2.3.4:", ":80", "[::1]:80", "::1", "[::1]", "a:b:c", "x]:1", "[x:1", "host:port"}
	rnd := rand.New(rand.NewPCG(3, 4))
	const alphabet = "1.:[]a%"
	for range 20000 {
		b := make([]byte, rnd.IntN(8))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		in = append(in, string(b))
	}
	for _, a := range in {
		if got, want := clientIP(&http.Request{RemoteAddr: a}), ref(a); got != want {
			t.Fatalf("clientIP(%q) = %q, want %q", a, got, want)
		}
	}
}
