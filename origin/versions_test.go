package origin

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDeploy(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"index.html": "home", "a/b/c.txt": "deep", ".git/HEAD": "ref", "a/.env": "x",
	})
	os.Symlink("a/b/c.txt", filepath.Join(src, "link.txt"))

	res, err := Deploy(root, src, "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 || res.Existed || !strings.HasPrefix(res.Version, "c") {
		t.Errorf("first deploy: %+v", res)
	}
	if strings.Join(res.Skipped, ",") != ".git,a/.env" {
		t.Errorf("skipped %v", res.Skipped)
	}
	v := filepath.Join(root, res.Version)
	if b, _ := os.ReadFile(filepath.Join(v, "link.txt")); string(b) != "deep" {
		t.Errorf("link copied as %q", b)
	}
	if st, _ := os.Lstat(filepath.Join(v, "link.txt")); st == nil || !st.Mode().IsRegular() {
		t.Error("symlink not copied as a regular file")
	}
	for _, hidden := range []string{".git", "a/.env"} {
		if _, err := os.Stat(filepath.Join(v, hidden)); err == nil {
			t.Errorf("%s copied", hidden)
		}
	}
	// Same content: same version, nothing written.
	again, err := Deploy(root, src, "")
	if err != nil || !again.Existed || again.Version != res.Version {
		t.Errorf("second deploy: %+v, %v", again, err)
	}
	// Named versions are immutable.
	if _, err := Deploy(root, src, "blue"); err != nil {
		t.Fatal(err)
	}
	if _, err := Deploy(root, src, "blue"); !errors.Is(err, ErrVersionExists) {
		t.Errorf("redeploying blue: %v", err)
	}
	for _, bad := range []string{"current", "../x", ".hidden", "a/b", "-x", strings.Repeat("v", 129)} {
		if _, err := Deploy(root, src, bad); err == nil {
			t.Errorf("version %q accepted", bad)
		}
	}
	// A symlink out of the source fails the whole deploy and leaves nothing.
	outside := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(outside, []byte("x"), 0o644)
	os.Symlink(outside, filepath.Join(src, "evil"))
	if _, err := Deploy(root, src, "green"); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("escaping symlink: %v", err)
	}
	ents, _ := os.ReadDir(root)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "blue,"+res.Version {
		t.Errorf("root holds %v after a failed deploy", names)
	}
	if _, err := Active(root); !errors.Is(err, ErrNoVersion) {
		t.Errorf("Active before any activation: %v", err)
	}
	if err := Activate(root, "nope"); err == nil {
		t.Error("activated a missing version")
	}
	if err := Activate(root, "blue"); err != nil {
		t.Fatal(err)
	}
	if a, _ := Active(root); a != "blue" {
		t.Errorf("active %q", a)
	}
}

// versionFile is the content of file i in version v: every byte range of
// it names its version, so a response mixing versions is detected.
func versionFile(v string, i int) string {
	size := 100 + i*7919%20000
	if i == 0 {
		size = 300 << 10 // one big file goes by sendfile
	}
	unit := "[" + v + "]"
	return strings.Repeat(unit, size/len(unit)+1)[:size]
}

// TestDeployActivateUnderLoad deploys and activates versions one after
// the other while clients fetch files (whole and ranged) as fast as they
// can. Every response must be complete, from exactly one version, match
// that version's bytes, and no client may see versions go backwards or
// see an error.
func TestDeployActivateUnderLoad(t *testing.T) {
	const (
		nfiles   = 12
		versions = 15
		clients  = 8
	)
	content := func(v string) map[string]string {
		m := map[string]string{}
		for i := 0; i < nfiles; i++ {
			m["f"+strconv.Itoa(i)] = versionFile(v, i)
		}
		return m
	}
	o := newOrigin(t, content("v1"), nil)
	// Versions are named v01..v15 so their order is their name order.
	versionNum := func(v string) int { n, _ := strconv.Atoi(strings.TrimPrefix(v, "v")); return n }

	var (
		stop     atomic.Bool
		requests atomic.Int64
		wg       sync.WaitGroup
		errMu    sync.Mutex
		errs     []string
	)
	fail := func(format string, a ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
		stop.Store(true)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			last := 0
			for !stop.Load() {
				i := rng.IntN(nfiles)
				req, _ := http.NewRequest("GET", o.url+"/f"+strconv.Itoa(i), nil)
				ranged := rng.IntN(3) == 0
				if ranged {
					req.Header.Set("Range", "bytes=10-99")
				}
				resp, err := client.Do(req)
				if err != nil {
					fail("client %d: %v", c, err)
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				requests.Add(1)
				v := resp.Header.Get(VersionHeader)
				want := 200
				if ranged {
					want = 206
				}
				if err != nil || resp.StatusCode != want {
					fail("client %d f%d: status %d, err %v", c, i, resp.StatusCode, err)
					return
				}
				full := versionFile(v, i)
				if ranged {
					full = full[10:100]
				}
				if string(body) != full {
					fail("client %d f%d: body (%d bytes) is not version %s's (%d bytes)", c, i, len(body), v, len(full))
					return
				}
				n := versionNum(v)
				if v == "v1" {
					n = 1
				}
				if n < last {
					fail("client %d: version went back from %d to %d", c, last, n)
					return
				}
				last = n
			}
		}(c)
	}
	// A watcher checks that every version it can see in the root is
	// complete: a deploy must never expose a half-written version.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			vs, err := Versions(o.root)
			if err != nil {
				fail("versions: %v", err)
				return
			}
			for _, v := range vs {
				for i := 0; i < nfiles; i++ {
					b, err := os.ReadFile(filepath.Join(o.root, v.Name, "f"+strconv.Itoa(i)))
					if err != nil || string(b) != versionFile(v.Name, i) {
						fail("version %s visible with f%d incomplete (%d bytes, %v)", v.Name, i, len(b), err)
						return
					}
				}
			}
		}
	}()
	for k := 2; k <= versions && !stop.Load(); k++ {
		v := fmt.Sprintf("v%02d", k)
		deployTree(t, o.root, v, content(v))
		if err := Activate(o.root, v); err != nil {
			t.Fatal(err)
		}
		// Let some requests land on each version.
		for target := requests.Load() + 20; requests.Load() < target && !stop.Load(); {
			time.Sleep(time.Millisecond)
		}
	}
	stop.Store(true)
	wg.Wait()
	for _, e := range errs {
		t.Error(e)
	}
	if n := requests.Load(); n < versions*20 {
		t.Errorf("only %d requests ran", n)
	}
	t.Logf("%d requests across %d activations", requests.Load(), versions-1)
}
