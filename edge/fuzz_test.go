package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/edge/httpcache"
	"github.com/intercloud/intercloud/role"
)

type fuzzResp struct {
	status                int
	cc, vary, name, value string
}

// FuzzHandler feeds random origin and client headers through the whole
// handler: it must never panic, and a response the origin marked private
// or no-store for one client must never reach another.
func FuzzHandler(f *testing.F) {
	f.Add(200, "private, max-age=60", "", "ETag", `"x"`, "Range", "bytes=0-2")
	f.Add(200, "max-age=60", "X-User", "Set-Cookie", "a=b", "If-None-Match", `"x"`)
	f.Add(200, "max-age=60", "", "ETag", `"a,b"`, "If-None-Match", `"a,b", "c"`)
	f.Add(200, "max-age=60", "", "Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT", "If-Unmodified-Since", "Sun, 01 Jan 2006 15:04:05 GMT")
	f.Add(206, "public, s-maxage=5", "*", "Content-Range", "bytes 0-1/2", "Cache-Control", "max-stale")
	f.Add(304, "no-store", "Accept", "Expires", "0", "Cache-Control", "only-if-cached")
	f.Add(500, `no-cache="set-cookie"`, "", "Age", "-1", "If-Modified-Since", "garbage")
	f.Add(200, "max-age=1, stale-while-revalidate=9", "", "Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT", "Pragma", "no-cache")
	// Between edges (tiers.go): hop counts in and out of range.
	f.Add(200, "max-age=60", "", "", "", "X-Intercloud-Hops", "3")
	f.Add(200, "max-age=60", "", "", "", "X-Intercloud-Hops", "99999999999999999999")
	f.Add(200, "max-age=60", "", "", "", "X-Intercloud-Hops", " -1")
	f.Add(200, "max-age=60", "", "", "", "X-Intercloud-Tier", "parent")

	var cur atomic.Pointer[fuzzResp]
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr := cur.Load()
		w.Header().Set("Cache-Control", fr.cc)
		if fr.vary != "" {
			w.Header().Set("Vary", fr.vary)
		}
		if fr.name != "" {
			w.Header().Set(fr.name, fr.value)
		}
		w.WriteHeader(fr.status)
		io.WriteString(w, "user:"+r.Header.Get("X-User"))
	}))
	defer o.Close()
	e, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer e.Close(context.Background())
	d := simple(o.URL)
	d.Spec.Behaviors[0].Forward.Headers = []string{"*"}
	snap := site(1, d)
	snap.Site.Nodes = nil
	if err := role.Apply(context.Background(), e, snap); err != nil {
		f.Fatal(err)
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, status int, cc, vary, name, value, reqName, reqValue string) {
		if status < 200 || status > 599 {
			status = 200 + (status%400+400)%400
		}
		if !validToken(name) {
			name = ""
		}
		cur.Store(&fuzzResp{status: status, cc: clean(cc), vary: clean(vary), name: name, value: clean(value)})
		path := "/f/" + strconv.FormatInt(n.Add(1), 10)
		serve := func(user string) *httptest.ResponseRecorder {
			req := httptest.NewRequest("GET", "http://shop.cdn.test"+path, nil)
			req.Header.Set("X-User", user)
			if validToken(reqName) {
				req.Header.Set(reqName, clean(reqValue))
			}
			w := httptest.NewRecorder()
			done := make(chan struct{})
			go func() { e.ServeHTTP(w, req); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("request hangs: status=%d cc=%q vary=%q %s=%q, request %s=%q", status, cc, vary, name, value, reqName, reqValue)
			}
			return w
		}
		a := serve("alice")
		b := serve("bob")
		respCC, _ := httpcache.ParseCacheControl([]string{clean(cc)})
		private := respCC.Private && len(respCC.PrivateFields) == 0
		if (private || respCC.NoStore) && strings.Contains(b.Body.String(), "user:alice") {
			t.Fatalf("private response for alice served to bob: cc=%q cache-status a=%q b=%q", cc, a.Header().Get("Cache-Status"), b.Header().Get("Cache-Status"))
		}
	})
}

func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	// Framing fields would make the test origin lie about its body.
	switch strings.ToLower(s) {
	case "content-length", "transfer-encoding", "connection", "host", "x-user", "trailer":
		return false
	}
	return true
}
