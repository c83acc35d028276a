package controlplane

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/agent"
	"github.com/intercloud/intercloud/store"
)

// fleet is the site's nodes, each a real agent (agent.New + Run, the code
// `intercloud node` runs) inside the benchmark process, with its own state
// directory (last known good snapshot), lease, status and listeners. What
// one process does not have is a core per node: the machine's two cores
// carry every node, the three store members and the controller.
//
// perClient agents share one store client (etcd connection, watches and
// read cache), as the nodes of `intercloud up` share one: a revision is
// then fetched and decoded once for them, where a fleet of hosts decodes
// it on each host at once, in parallel. 1 gives every agent its own
// client, so the two cores decode every node's copy one after another.
type fleet struct {
	nodes  []nodeSpec
	stores []*store.Store
	cancel context.CancelFunc
	wg     sync.WaitGroup
	logs   *syncBuffer
	client []*http.Client // one keep-alive client per edge
}

// startFleet starts one agent per node. Agents log warnings and errors
// only, into a buffer shown when the benchmark fails.
func startFleet(b *testing.B, endpoints []string, nodes []nodeSpec, dir string, perClient int) *fleet {
	f := &fleet{nodes: nodes, logs: &syncBuffer{}}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	var s *store.Store
	for i, n := range nodes {
		if i%max(perClient, 1) == 0 {
			var err error
			if s, err = store.Open(endpoints); err != nil {
				b.Fatal(err)
			}
			f.stores = append(f.stores, s)
		}
		a := agent.New(agent.Options{Node: n.name, Store: s, StateDir: filepath.Join(dir, n.name), Logger: log})
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := a.Run(ctx); err != nil {
				log.Error("agent stopped", "node", n.name, "err", err)
			}
		}()
		f.client = append(f.client, &http.Client{Timeout: 5 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 1, DialContext: (&net.Dialer{}).DialContext}})
	}
	b.Cleanup(f.stop)
	return f
}

// stop ends every agent (each revokes its lease and closes its roles,
// releasing its ports) and closes their clients; it may be called twice.
func (f *fleet) stop() {
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
	for _, s := range f.stores {
		s.Close()
	}
	for _, c := range f.client {
		c.CloseIdleConnections()
	}
	f.cancel = nil
}

// tag asks node i's edge for distribution dist, as a client would, and
// returns the X-Tag header of the answer ("" on any failure).
func (f *fleet) tag(i int, dist string) string {
	req, _ := http.NewRequest("GET", "http://"+f.nodes[i].http+"/", nil)
	req.Host = dist + "." + zone[:len(zone)-1]
	resp, err := f.client[i].Do(req)
	if err != nil {
		return ""
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Tag")
}

// syncBuffer is a bytes.Buffer for many writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the last half MiB or so
		rest := append([]byte(nil), s.b.Bytes()[s.b.Len()-512<<10:]...)
		s.b.Reset()
		s.b.Write(rest)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
