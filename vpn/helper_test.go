package vpn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/vpn"
)

func TestMain(m *testing.M) { netns.Main(m) }

func init() {
	netns.RegisterHelper("vpnd", vpnd)
	netns.RegisterHelper("sink", sink)
	netns.RegisterHelper("send", send)
}

// vpnd runs a vpn.Manager as its own process inside a namespace (one process
// per namespace: wireguard-go must never see a namespace switch). The test
// drives it over HTTP on a unix socket, which crosses namespaces:
// POST /apply takes a config.Site, GET /v1/vpn is the status, GET /events
// lists every OnPeerState call so far.
func vpnd(args []string) int {
	fs := flag.NewFlagSet("vpnd", flag.ContinueOnError)
	node := fs.String("node", "", "node name")
	ctl := fs.String("ctl", "", "control socket")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var mu sync.Mutex
	events := []vpn.PeerState{}
	reg := prometheus.NewRegistry()
	m, err := vpn.New(vpn.Options{
		Node: *node, Logger: log, CheckInterval: 100 * time.Millisecond, Registry: reg,
		OnPeerState: func(s vpn.PeerState) {
			mu.Lock()
			events = append(events, s)
			mu.Unlock()
		},
	})
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	mux := http.NewServeMux()
	m.Routes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /apply", func(w http.ResponseWriter, r *http.Request) {
		var site config.Site
		if err := json.NewDecoder(r.Body).Decode(&site); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := m.Apply(r.Context(), &site); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	})
	mux.HandleFunc("GET /drift", func(w http.ResponseWriter, r *http.Request) {
		d, err := m.Drift()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(d)
	})
	mux.HandleFunc("POST /heal", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Heal(r.Context(), r.URL.Query().Get("interface")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewEncoder(w).Encode(events)
	})
	os.Remove(*ctl)
	ln, err := net.Listen("unix", *ctl)
	if err != nil {
		log.Error("listen", "err", err)
		return 1
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		log.Error("close", "err", err)
		return 1
	}
	return 0
}

// sink accepts one TCP connection on addr and prints how many bytes it read.
func sink(args []string) int {
	ln, err := net.Listen("tcp", args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("listening")
	c, err := ln.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, err := io.Copy(io.Discard, c)
	fmt.Printf("received %d\n", n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// send writes n bytes to addr over TCP.
func send(args []string) int {
	n, _ := strconv.ParseInt(args[1], 10, 64)
	c, err := net.DialTimeout("tcp", args[0], 5*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buf := make([]byte, 64<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var sent int64
	for sent < n {
		k := min(int64(len(buf)), n-sent)
		w, err := c.Write(buf[:k])
		sent += int64(w)
		if err != nil {
			fmt.Fprintf(os.Stderr, "after %d bytes: %v\n", sent, err)
			return 1
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 1
	}
	io.Copy(io.Discard, c)
	fmt.Printf("sent %d\n", sent)
	return 0
}

// daemon is the test's handle on a vpnd helper.
type daemon struct {
	t    *testing.T
	proc *netns.Proc
	c    *http.Client
}

func startDaemon(t *testing.T, ns *netns.Namespace, node string) *daemon {
	t.Helper()
	ctl := fmt.Sprintf("%s/%s.ctl", t.TempDir(), node)
	p := ns.StartHelper("vpnd", "-node", node, "-ctl", ctl)
	d := &daemon{t: t, proc: p, c: &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", ctl)
		}},
	}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ctl); err == nil {
			return d
		}
		select {
		case <-p.Done():
			t.Fatalf("vpnd %s exited: %v\n%s", node, p.Err(), p.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("vpnd %s did not start:\n%s", node, p.Output())
		}
	}
}

func (d *daemon) apply(site *config.Site) error {
	b, _ := json.Marshal(site)
	resp, err := d.c.Post("http://vpnd/apply", "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return errors.New(string(msg))
	}
	return nil
}

func (d *daemon) mustApply(site *config.Site) {
	d.t.Helper()
	if err := d.apply(site); err != nil {
		d.t.Fatalf("apply: %v", err)
	}
}

func (d *daemon) status() vpn.Status {
	d.t.Helper()
	var s vpn.Status
	d.get("/v1/vpn", &s)
	return s
}

func (d *daemon) events() []vpn.PeerState {
	d.t.Helper()
	var e []vpn.PeerState
	d.get("/events", &e)
	return e
}

func (d *daemon) metrics() string {
	d.t.Helper()
	resp, err := d.c.Get("http://vpnd/metrics")
	if err != nil {
		d.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (d *daemon) get(path string, v any) {
	d.t.Helper()
	resp, err := d.c.Get("http://vpnd" + path)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
}

// waitPeer polls until the daemon's only peer is up (or down) and returns
// its state.
func (d *daemon) waitPeer(up bool, within time.Duration) vpn.PeerState {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := d.status()
		if len(s.Interfaces) == 1 && s.Interfaces[0].Peer.Up == up {
			return s.Interfaces[0].Peer
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("peer not up=%v within %s: %+v\n%s", up, within, s, d.proc.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
