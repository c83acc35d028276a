package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
)

// SIGHUP on a node reopens its edge's access log (logrotate's postrotate):
// the agent re-applies the current revision, and the edge opens the file
// anew for every revision it prepares. Real etcd, real listener.
func TestHangupReopensTheAccessLog(t *testing.T) {
	member := storetest.Start(t)
	st := storetest.Open(t, member.Endpoints())
	ctx := context.Background()
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)
	logPath := filepath.Join(t.TempDir(), "access.log")
	httpAddr := storetest.FreeAddr(t)
	snap := &config.Snapshot{
		Site: config.Site{Name: "t", DNS: config.DNS{Zone: "cdn.test."}, Clouds: []config.Cloud{{Name: "c"}},
			Nodes: []config.Node{{Name: "n1", Cloud: "c", Roles: []config.Role{config.RoleEdge}, Address: "127.0.0.1",
				Listen:    config.Listen{HTTP: httpAddr},
				AccessLog: &config.AccessLog{Path: logPath, Format: "combined", Flush: config.Duration(20 * time.Millisecond)}}}},
		Distributions: []config.Distribution{{Name: "shop", Spec: config.Spec{
			Origins:   map[string]config.Origin{"o": {URL: origin.URL}},
			Behaviors: []config.Behavior{{Path: "*", Target: "o"}},
		}}},
	}
	snap.SetDefaults()
	snap.Revision, snap.Hash = 1, config.Hash(snap)
	if err := st.Commit(ctx, snap, 0); err != nil {
		t.Fatal(err)
	}
	hup := make(chan os.Signal, 1)
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	a := New(Options{Node: "n1", Store: storetest.Open(t, member.Endpoints()), StateDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Admin: storetest.FreeAddr(t), Reload: hup})
	go func() { defer close(done); _ = a.Run(actx) }()
	t.Cleanup(func() { cancel(); <-done })

	request := func(path string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
		req.Host = "shop.cdn.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	contains := func(p, s string) bool {
		b, _ := os.ReadFile(p)
		return strings.Contains(string(b), s)
	}
	storetest.Eventually(t, 15*time.Second, "edge serves", func() bool {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+"/", nil)
		req.Host = "shop.cdn.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	request("/before")
	storetest.Eventually(t, 10*time.Second, "line written", func() bool { return contains(logPath, "GET /before ") })

	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	storetest.Eventually(t, 10*time.Second, "file reopened at its path", func() bool {
		_, err := os.Stat(logPath)
		return err == nil
	})
	request("/after")
	storetest.Eventually(t, 10*time.Second, "line in the new file", func() bool { return contains(logPath, "GET /after ") })
	if contains(logPath+".1", "/after") {
		t.Fatal("a line after the reopen went to the rotated file")
	}
}
