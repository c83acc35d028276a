package admin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ready  error
		detail []string
		code   int
		body   string
	}{
		{"ready", nil, nil, 200, "ready\n"},
		{"ready, degraded", nil, []string{"edge: disk tier /c: no space"}, 200, "ready\ndegraded: edge: disk tier /c: no space\n"},
		{"not ready", errors.New("no configuration"), []string{"ignored"}, 503, "not ready: no configuration\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(func() error { return tc.ready })
			s.Detail(func() []string { return tc.detail })
			w := httptest.NewRecorder()
			s.Mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if w.Code != tc.code || w.Body.String() != tc.body {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body.String(), tc.code, tc.body)
			}
		})
	}
}
