// Package dnspeer runs the DNS benchmarks' peer and load: gdnsd started
// from a config directory, dnsperf against a port, and one lookup to check
// both servers answer alike before they are compared.
package dnspeer

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// FreePort is a loopback port free for both UDP and TCP a moment ago.
func FreePort(tb testing.TB) int {
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		t, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		u.Close()
		if err == nil {
			t.Close()
			return port
		}
	}
	tb.Fatal("no free port")
	return 0
}

// StartGdnsd runs gdnsd in the foreground from the config in dir and waits
// until it answers probe (an A name) on port. It dies with the benchmark
// binary and is stopped when the benchmark ends.
func StartGdnsd(tb testing.TB, dir string, port int, probe string) *exec.Cmd {
	cmd := exec.Command("gdnsd", "-c", dir, "start")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		m := new(mdns.Msg)
		m.SetQuestion(probe, mdns.TypeA)
		if r, err := mdns.Exchange(m, addr); err == nil && len(r.Answer) == 1 {
			return cmd
		}
		if i > 200 {
			tb.Fatalf("gdnsd did not answer on %s:\n%s", addr, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CPUSeconds reads a process's user+system CPU time from /proc.
func CPUSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// Result is one dnsperf run.
type Result struct {
	QPS, Lost, Sent float64
	CPU             float64 // the server's CPU seconds during the run
}

var (
	reQPS  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	reLost = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	reSent = regexp.MustCompile(`Queries sent:\s+(\d+)`)
)

// Load is how dnsperf runs: passes through the query file and clients.
type Load struct {
	Passes, Clients int
	Extra           []string // more dnsperf flags (ECS)
}

// Dnsperf loads the server on port (process pid, for its CPU time) with
// the queries in file.
func Dnsperf(tb testing.TB, port int, queries string, l Load, pid int) Result {
	args := append([]string{"-s", "127.0.0.1", "-p", strconv.Itoa(port), "-d", queries,
		"-n", strconv.Itoa(l.Passes), "-l", "30", "-c", strconv.Itoa(l.Clients), "-T", "1", "-q", "64"}, l.Extra...)
	c0 := CPUSeconds(pid)
	out, err := exec.Command("dnsperf", args...).CombinedOutput()
	c1 := CPUSeconds(pid)
	if err != nil {
		tb.Fatalf("dnsperf %v: %v\n%s", args, err, out)
	}
	var r Result
	for _, x := range []struct {
		re *regexp.Regexp
		v  *float64
	}{{reQPS, &r.QPS}, {reLost, &r.Lost}, {reSent, &r.Sent}} {
		m := x.re.FindSubmatch(out)
		if m == nil {
			tb.Fatalf("dnsperf output without %v:\n%s", x.re, out)
		}
		*x.v, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	r.CPU = c1 - c0
	return r
}

// Lookup asks the server on port for name's A records (with an ECS
// option when ecs is a CIDR) and returns them sorted, comma-separated.
func Lookup(tb testing.TB, port int, name, ecs string) string {
	got, err := lookup(port, name, ecs)
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

// WaitAnswer waits until the server on port answers name with want (a
// server just started, or still applying its first revision).
func WaitAnswer(tb testing.TB, port int, name, want string) {
	for i := 0; ; i++ {
		got, err := lookup(port, name, "")
		if err == nil && got == want {
			return
		}
		if i > 300 {
			tb.Fatalf("port %d never answered %s with %s: %q %v", port, name, want, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lookup(port int, name, ecs string) (string, error) {
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	if ecs != "" {
		m.SetEdns0(1232, false)
		_, n, _ := net.ParseCIDR(ecs)
		ones, _ := n.Mask.Size()
		m.IsEdns0().Option = append(m.IsEdns0().Option, &mdns.EDNS0_SUBNET{Code: mdns.EDNS0SUBNET, Family: 1,
			SourceNetmask: uint8(ones), Address: n.IP.To4()})
	}
	r, err := mdns.Exchange(m, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "", err
	}
	var got []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*mdns.A); ok {
			got = append(got, a.A.String())
		}
	}
	slices.Sort(got)
	return strings.Join(got, ","), nil
}

// Cloud is a site of the geo split: where it is and its edges' addresses.
type Cloud struct {
	Name     string
	Lat, Lon float64
	Addrs    []string
}

// Clouds are the four sites both servers of the DNS comparisons split by.
var Clouds = []Cloud{
	{"seoul", 37.56, 126.97, []string{"127.0.1.1", "127.0.1.2"}},
	{"tokyo", 35.68, 139.69, []string{"127.0.2.1"}},
	{"virginia", 38.9, -77.0, []string{"127.0.3.1"}},
	{"frankfurt", 50.11, 8.68, []string{"127.0.4.1"}},
}

// WriteGdnsdConfig writes gdnsd's configuration in dir: a listener on
// port, Clouds as the datacenters of a geoip map in city auto mode (the
// nearest by the records' coordinates, from the mmdb), one resource of
// that map named resource, and zone's file: an SOA, its NS at 127.0.0.53
// and records.
func WriteGdnsdConfig(dir, mmdb string, port int, resource, zone, records string) error {
	var coords, dcmap, names strings.Builder
	for _, c := range Clouds {
		names.WriteString(c.Name + ", ")
		fmt.Fprintf(&coords, "        %s => [%g, %g]\n", c.Name, c.Lat, c.Lon)
		fmt.Fprintf(&dcmap, "        %s => [%s]\n", c.Name, strings.Join(c.Addrs, ", "))
	}
	cfg := fmt.Sprintf(`options => {
  listen => [ "127.0.0.1:%d" ]
  run_dir => %s/run
  state_dir => %s/state
  udp_threads => 2
  tcp_threads => 1
  zones_default_ttl => 30
}
plugins => { geoip => {
  maps => {
    geo => {
      geoip2_db => %s
      datacenters => [%s]
      auto_dc_coords => {
%s      }
      auto_dc_limit => 1
    }
  }
  resources => {
    %s => {
      map => geo
      dcmap => {
%s      }
    }
  }
}}
`, port, dir, dir, mmdb, strings.TrimSuffix(names.String(), ", "), coords.String(), resource, dcmap.String())
	zoneFile := "$TTL 30\n@ SOA ns1 hostmaster 42 3600 600 604800 5\n@ NS ns1\nns1 A 127.0.0.53\n" + records
	if err := os.MkdirAll(filepath.Join(dir, "zones"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "zones", strings.TrimSuffix(zone, ".")), []byte(zoneFile), 0o644)
}
