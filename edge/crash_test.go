package edge

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/test/testenv"
)

// The child edge: the test binary re-executed runs one edge with a disk
// tier and prints its address and its admin address (/metrics,
// /v1/edge/cache), until it is killed. With childTmpfs it first mounts a
// tmpfs of that size on the directory, in the private mount namespace
// `unshare -m` gave it: the mount goes with the process, even when the
// test crashes.
const (
	childOrigin = "INTERCLOUD_TEST_EDGE_ORIGIN"
	childDir    = "INTERCLOUD_TEST_EDGE_DIR"
	childTmpfs  = "INTERCLOUD_TEST_EDGE_TMPFS"
)

func TestDiskChild(t *testing.T) {
	origin, dir := os.Getenv(childOrigin), os.Getenv(childDir)
	if origin == "" {
		t.Skip("runs only as the child of the disk tier's process tests")
	}
	if size := os.Getenv(childTmpfs); size != "" {
		own, _ := os.Readlink("/proc/self/ns/mnt")
		host, _ := os.Readlink("/proc/1/ns/mnt")
		if own == "" || own == host {
			t.Fatal("refusing to mount a tmpfs outside a private mount namespace")
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
			t.Fatalf("mount tmpfs: %v: %s", err, out)
		}
	}
	reg, mux := prometheus.NewRegistry(), http.NewServeMux()
	e, err := New(Options{Node: "edge-1", Registry: reg, Mux: mux})
	if err != nil {
		t.Fatal(err)
	}
	if err := role.Apply(context.Background(), e, diskSnap(origin, dir, 64<<20)); err != nil {
		t.Fatal(err)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(ln, mux)
	os.Stdout.WriteString("ADDR " + e.Addrs()["http"] + "\nADMIN " + ln.Addr().String() + "\n")
	select {} // until SIGKILL
}

// child is a running child edge.
type child struct {
	base, admin string
	cmd         *exec.Cmd
}

// childEdge runs the child edge on dir with env added, under prefix (a
// tracer, unshare) if set.
func childEdge(t *testing.T, origin, dir string, env []string, prefix ...string) child {
	t.Helper()
	args := append(prefix, os.Args[0], "-test.run=^TestDiskChild$", "-test.timeout=5m")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), childOrigin+"="+origin, childDir+"="+dir), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	// Its own process group, killed with the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killChild(cmd) })
	c := child{cmd: cmd}
	r := bufio.NewReader(out)
	for c.base == "" || c.admin == "" {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("child edge did not start: %q %v", line, err)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR "); ok {
			c.base = "http://" + v
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ADMIN "); ok {
			c.admin = "http://" + v
		}
	}
	return c
}

// killChild sends SIGKILL to the child's process group and reaps it.
func killChild(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}

func getFrom(t *testing.T, base, path string) result {
	t.Helper()
	h := &harness{t: t, base: base, c: &http.Client{Timeout: 30 * time.Second}}
	return h.get(path)
}

// TestKillDuringFill: an edge killed with SIGKILL in the middle of a
// fill, restarted on the same directory, serves what it had stored at
// once, never the half-written object, and drops a file damaged while it
// was down.
func TestKillDuringFill(t *testing.T) {
	objs := map[string][]byte{"whole": payload(2<<20, 5), "damaged": payload(2<<20, 6)}
	o := newOrigin(t, &clock{}, objects(objs))
	big := payload(4<<20, 7)
	g := newGatedOrigin(t, big, 256<<10, false, false)
	dir := t.TempDir()

	// One origin for both: /whole and /damaged from o, /big from g.
	mux := http.NewServeMux()
	mux.Handle("/big", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxyTo(t, w, r, g.url)
	}))
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxyTo(t, w, r, o.URL)
	}))
	front := newOrigin(t, &clock{}, mux.ServeHTTP)

	c := childEdge(t, front.URL, dir, nil)
	base, cmd := c.base, c.cmd
	for _, name := range []string{"whole", "damaged"} {
		if r := getFrom(t, base, "/"+name); r.body != string(objs[name]) {
			t.Fatalf("%s: %d bytes", name, len(r.body))
		}
		eventually(t, name+" stored", func() bool { return getFrom(t, base, "/"+name).hit() })
	}
	// A fill in flight: the client has its first bytes, the origin holds
	// back the rest, and the edge is killed.
	req, _ := http.NewRequest("GET", base+"/big", nil)
	req.Host = "shop.cdn.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	killChild(cmd)
	resp.Body.Close()
	close(g.open)
	halfWritten, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	if len(halfWritten) == 0 {
		t.Fatal("no half-written file after the kill: the test did not kill during a fill")
	}
	damage(t, dir, objs["damaged"])

	fetches := o.count()
	base = childEdge(t, front.URL, dir, nil).base
	if r := getFrom(t, base, "/whole"); !r.hit() || r.body != string(objs["whole"]) {
		t.Errorf("whole after the restart: %s, %d bytes", r.cs(), len(r.body))
	}
	if r := getFrom(t, base, "/damaged"); r.hit() || r.body != string(objs["damaged"]) {
		t.Errorf("damaged after the restart: %s, %d bytes (the damaged copy must not be served)", r.cs(), len(r.body))
	}
	if o.count() != fetches+1 {
		t.Errorf("origin fetched %d times after the restart, want 1 (the damaged object)", o.count()-fetches)
	}
	if r := getFrom(t, base, "/big"); r.hit() || r.body != string(big) {
		t.Errorf("big after the restart: %s, %d bytes", r.cs(), len(r.body))
	}
	// The files the kill left are removed; the new fill of /big may still
	// be writing its own (disk writes run behind the request path).
	eventually(t, "the half-written files removed after the restart", func() bool {
		for _, f := range halfWritten {
			if _, err := os.Stat(filepath.Join(dir, "tmp", f.Name())); err == nil {
				return false
			}
		}
		return true
	})
}

// damage flips a byte in the middle of the body of the file holding body.
func damage(t *testing.T, dir string, body []byte) {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(p string, de os.DirEntry, _ error) error {
		if de == nil || de.IsDir() || found {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil || len(b) < len(body) || string(b[len(b)-len(body):]) != string(body) {
			return nil
		}
		b[len(b)-len(body)/2] ^= 0xff
		found = os.WriteFile(p, b, 0o644) == nil
		return nil
	})
	if !found {
		t.Fatal("no file holds the object to damage")
	}
}

// proxyTo relays r to base: the tests' origins behind one address.
func proxyTo(t *testing.T, w http.ResponseWriter, r *http.Request, base string) {
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, base+r.URL.RequestURI(), nil)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			w.Write(buf[:n])
			w.(http.Flusher).Flush()
		}
		if err != nil {
			return
		}
	}
}

// TestDiskHitSendfile: a hit from the disk tier reaches the socket with
// sendfile(2), no copy through user space (seen with strace), on the
// fast HTTP/1.1 path and on net/http.
func TestDiskHitSendfile(t *testing.T) {
	strace := testenv.NeedTool(t, "strace", "strace")
	for _, server := range []string{"h1", "net/http"} {
		t.Run(server, func(t *testing.T) {
			if server == "net/http" {
				t.Setenv("INTERCLOUD_HTTP", "net/http") // inherited by the child
			}
			objs := map[string][]byte{"large": payload(3<<20, 8)}
			o := newOrigin(t, &clock{}, objects(objs))
			trace := filepath.Join(t.TempDir(), "trace")
			c := childEdge(t, o.URL, t.TempDir(), nil, strace, "-f", "-qq", "-e", "trace=sendfile", "-o", trace)
			base, cmd := c.base, c.cmd
			// The miss streams from the file being written: sendfile too.
			if r := getFrom(t, base, "/large"); r.body != string(objs["large"]) {
				t.Fatalf("miss: %s, %d bytes", r.cs(), len(r.body))
			}
			if fill, _ := os.ReadFile(trace); !strings.Contains(string(fill), "sendfile(") {
				t.Fatalf("no sendfile for a streaming fill; strace saw:\n%s", fill)
			}
			eventually(t, "a hit", func() bool { return getFrom(t, base, "/large").hit() })
			before, _ := os.ReadFile(trace)
			if r := getFrom(t, base, "/large"); !r.hit() || r.body != string(objs["large"]) {
				t.Fatalf("hit: %s, %d bytes", r.cs(), len(r.body))
			}
			killChild(cmd)
			after, _ := os.ReadFile(trace)
			if !strings.Contains(string(after[len(before):]), "sendfile(") {
				t.Fatalf("no sendfile for a disk hit; strace saw:\n%s", after)
			}
		})
	}
}
