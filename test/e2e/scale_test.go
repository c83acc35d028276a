package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/sitegen"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/test/testenv"
)

const scaleSite = `apiVersion: intercloud/v1
kind: Site
name: scale
store: {listen: %[1]s, peer: %[2]s, dataDir: store, leaseTTL: 3s}
controller: {admin: %[3]s, driftGrace: 1s}
dns: {zone: scale.test., ttl: 5s}
clouds:
  - {name: c1, asn: 65001, cidrs: [10.1.0.0/16]}
  - {name: c2, asn: 65002, cidrs: [10.2.0.0/16]}
nodes:
  - {name: e1, cloud: c1, roles: [edge], address: 127.0.0.1, listen: {http: "%[4]s", admin: "%[5]s"}}
  - {name: e2, cloud: c2, roles: [edge], address: 127.0.0.2, listen: {http: "%[6]s", admin: "%[7]s"}}
`

// tag is the X-Tag an edge answers a distribution of the scale site with.
func tag(edge, dist string) string {
	req, _ := http.NewRequest("GET", "http://"+edge+"/", nil)
	req.Host = dist + ".scale.test"
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	return resp.Header.Get("X-Tag")
}

// writeScaleDists writes n distribution files served by origin.
func writeScaleDists(t *testing.T, dir string, n int, origin string) {
	if err := sitegen.Write(filepath.Join(dir, "cfg"), n, origin, "a"); err != nil {
		t.Fatal(err)
	}
}

// TestThousandDistributionsThroughUp: 1,000 distribution files through
// `intercloud up` (one apply is far more than one etcd transaction): both
// edges serve them, a one-line change to one distribution reaches both,
// and a rollback takes it back.
func TestThousandDistributionsThroughUp(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	dir := t.TempDir()
	a := storetest.FreeAddr
	storeAddr, peerAddr, ctlAddr, http1, admin1, http2, admin2 := a(t), a(t), a(t), a(t), a(t), a(t), a(t)
	http2 = strings.Replace(http2, "127.0.0.1", "127.0.0.2", 1)
	admin2 = strings.Replace(admin2, "127.0.0.1", "127.0.0.2", 1)
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), fmt.Sprintf(scaleSite, storeAddr, peerAddr, ctlAddr, http1, admin1, http2, admin2))
	writeScaleDists(t, dir, 1000, origin.URL)
	start(t, dir, "up", "-f", "cfg")
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "120s")
	for _, d := range []string{"d0000", "d0500", "d0999"} {
		for _, e := range []string{http1, http2} {
			if got := tag(e, d); got != "a" {
				t.Fatalf("%s on %s: X-Tag %q, want a", d, e, got)
			}
		}
	}

	// One line of one distribution.
	writeFile(t, filepath.Join(dir, "cfg/d0500.yaml"), sitegen.Distribution(500, origin.URL, "b"))
	out := mustRun(t, dir, "apply", "-f", "cfg")
	if !strings.Contains(out, "Applied revision 2") || strings.Count(out, "~ distribution") != 1 {
		t.Fatalf("one-line apply:\n%s", out)
	}
	storetest.Eventually(t, 20*time.Second, "both edges serve the change", func() bool {
		return tag(http1, "d0500") == "b" && tag(http2, "d0500") == "b"
	})
	if tag(http1, "d0499") != "a" {
		t.Fatal("a distribution the change did not touch changed")
	}

	if out := mustRun(t, dir, "rollback", "-f", "cfg"); !strings.Contains(out, "Applied revision 3") {
		t.Fatalf("rollback:\n%s", out)
	}
	storetest.Eventually(t, 20*time.Second, "both edges serve the rollback", func() bool {
		return tag(http1, "d0500") == "a" && tag(http2, "d0500") == "a"
	})
	hist := mustRun(t, dir, "history", "-f", "cfg")
	if !strings.Contains(hist, "rollback to revision 1") {
		t.Fatalf("history:\n%s", hist)
	}
}

// TestMemberKilledDuringALargeApply: a 3-member store of our own members
// loses one while 2,000 distributions are being written (far more than
// one transaction). The revision is then wholly there or wholly absent,
// and the node never serves part of it.
func TestMemberKilledDuringALargeApply(t *testing.T) {
	testenv.NeedTool(t, "dig", "dnsutils")
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	dir := t.TempDir()
	members := startThreeMembers(t, dir)
	procs, storeFlag := members.procs, members.flag
	ctlAddr, dnsAddr, nodeAdmin := storetest.FreeAddr(t), storetest.FreeAddr(t), storetest.FreeAddr(t)
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), fmt.Sprintf(spineSite, "127.0.0.1:1", "127.0.0.1:2", ctlAddr, dnsAddr, nodeAdmin))
	writeFile(t, filepath.Join(dir, "cfg/web.yaml"), spineDist)
	start(t, dir, "controller", "-f", "cfg", "--store", storeFlag)
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	start(t, dir, "node", "--name", "n1", "--store", storeFlag, "--state-dir", "state")
	storetest.Eventually(t, 60*time.Second, "node serves revision 1", func() bool { return soaSerial(t, dnsAddr) == "1" })

	const n = 2000
	writeScaleDists(t, dir, n, origin.URL)
	// Watch the node while the apply runs: a serial and the names it has
	// must agree at every look.
	exists := func(name string) bool {
		host, port, _ := strings.Cut(dnsAddr, ":")
		out, _ := exec.Command("dig", "+norecurse", "+time=1", "+tries=1", "@"+host, "-p", port, name+".spine.test.", "A").Output()
		return strings.Contains(string(out), "status: NOERROR")
	}
	stop := make(chan struct{})
	partial := make(chan string, 1)
	go func() {
		for {
			select {
			case <-stop:
				close(partial)
				return
			default:
			}
			// A look counts when the serial is the same before and after it.
			serial := soaSerial(t, dnsAddr)
			first, last := exists("d0000"), exists(fmt.Sprintf("d%04d", n-1))
			if soaSerial(t, dnsAddr) != serial {
				continue
			}
			if first != last || (serial == "1" && first) || (serial == "2" && !first) {
				partial <- fmt.Sprintf("serial %s, d0000 %v, d%04d %v", serial, first, n-1, last)
				close(partial)
				return
			}
		}
	}()
	// The CLI reads and renders the files first; the member dies while
	// the controller writes the parts.
	began := time.Now()
	killed := make(chan time.Duration, 1)
	go func() {
		time.Sleep(700 * time.Millisecond)
		procs[1].kill()
		killed <- time.Since(began)
	}()
	out, code := run(t, dir, "apply", "-f", "cfg")
	t.Logf("apply: exit %d after %s, member killed at %s\n%s", code, time.Since(began).Round(time.Millisecond), (<-killed).Round(time.Millisecond), lastLines(out, 3))
	if code == 0 {
		storetest.Eventually(t, 60*time.Second, "node serves the large revision", func() bool {
			return soaSerial(t, dnsAddr) == "2" && exists("d0000") && exists(fmt.Sprintf("d%04d", n-1))
		})
	} else {
		hist := mustRun(t, dir, "history", "-f", "cfg")
		if strings.Count(strings.TrimSpace(hist), "\n") != 1 {
			t.Fatalf("a failed apply left a revision:\n%s", hist)
		}
	}
	close(stop)
	if p, ok := <-partial; ok {
		t.Fatalf("the node served part of a revision: %s", p)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// threeMembers is a store of three of our own members (`intercloud store`).
type threeMembers struct {
	procs   []*proc
	flag    string // --store: the client endpoints
	restart func(i int)
}

func startThreeMembers(t *testing.T, dir string) *threeMembers {
	type member struct{ name, client, peer string }
	members := []member{{"m1", storetest.FreeAddr(t), storetest.FreeAddr(t)}, {"m2", storetest.FreeAddr(t), storetest.FreeAddr(t)}, {"m3", storetest.FreeAddr(t), storetest.FreeAddr(t)}}
	var initial, endpoints []string
	for _, m := range members {
		initial = append(initial, m.name+"=http://"+m.peer)
		endpoints = append(endpoints, m.client)
	}
	c := &threeMembers{procs: make([]*proc, len(members)), flag: strings.Join(endpoints, ",")}
	c.restart = func(i int) {
		m := members[i]
		c.procs[i] = start(t, dir, "store", "--name", m.name, "--data-dir", m.name, "--listen", m.client, "--peer", m.peer,
			"--initial-cluster", strings.Join(initial, ","))
	}
	for i := range members {
		c.restart(i)
	}
	return c
}

// TestThousandDistributionsOnAThreeMemberStore: the controller and both
// edges as processes on a 3-member store of our own: 1,000 distributions,
// a one-line change seen by both edges, a rollback, and history kept to
// the site's retention.
func TestThousandDistributionsOnAThreeMemberStore(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer origin.Close()
	dir := t.TempDir()
	storeFlag := startThreeMembers(t, dir).flag
	a := storetest.FreeAddr
	ctlAddr, http1, admin1, http2, admin2 := a(t), a(t), a(t), a(t), a(t)
	site := fmt.Sprintf(scaleSite, "127.0.0.1:1", "127.0.0.1:2", ctlAddr, http1, admin1, http2, admin2)
	site = strings.Replace(site, "leaseTTL: 3s}", "leaseTTL: 3s, history: {keep: 2, keepFor: 1s}}", 1)
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), site)
	writeScaleDists(t, dir, 1000, origin.URL)
	ctl := start(t, dir, "controller", "-f", "cfg", "--store", storeFlag)
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	for _, e := range []string{"e1", "e2"} {
		start(t, dir, "node", "--name", e, "--store", storeFlag, "--state-dir", "state-"+e)
	}
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "120s")
	for i, v := range []string{"b", "c", "d"} {
		writeFile(t, filepath.Join(dir, "cfg/d0500.yaml"), sitegen.Distribution(500, origin.URL, v))
		if out := mustRun(t, dir, "apply", "-f", "cfg"); !strings.Contains(out, fmt.Sprintf("Applied revision %d", i+2)) {
			t.Fatalf("apply %s:\n%s", v, out)
		}
		storetest.Eventually(t, 20*time.Second, "both edges serve "+v, func() bool {
			return tag(http1, "d0500") == v && tag(http2, "d0500") == v
		})
	}
	if out := mustRun(t, dir, "rollback", "-f", "cfg"); !strings.Contains(out, "Applied revision 5") {
		t.Fatalf("rollback:\n%s", out)
	}
	storetest.Eventually(t, 20*time.Second, "both edges serve the rollback", func() bool {
		return tag(http1, "d0500") == "c" && tag(http2, "d0500") == "c"
	})
	// The controller prunes as it starts (and every minute): the last two
	// revisions are left, and they still read whole.
	time.Sleep(time.Second) // older than keepFor
	if err := ctl.stop(t); err != nil {
		t.Fatal(err)
	}
	start(t, dir, "controller", "-f", "cfg", "--store", storeFlag)
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	storetest.Eventually(t, 20*time.Second, "history pruned to two revisions", func() bool {
		out, _ := run(t, dir, "history", "-f", "cfg")
		return strings.Count(strings.TrimSpace(out), "\n") == 2 && strings.Contains(out, "rollback to revision 3")
	})
	if out := mustRun(t, dir, "rollback", "-f", "cfg"); !strings.Contains(out, "Applied revision 6") {
		t.Fatalf("rollback within the kept history:\n%s", out)
	}
	storetest.Eventually(t, 20*time.Second, "both edges serve the second rollback", func() bool {
		return tag(http1, "d0500") == "d" && tag(http2, "d0500") == "d"
	})
}
