package edge

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"iter"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/intercloud/intercloud/internal/listen"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

var _ role.Drifter = (*Edge)(nil)

// handshakeTimeout bounds one certificate check on loopback.
const handshakeTimeout = 2 * time.Second

// Drift checks that each listener's socket is still the one the kernel
// has listening on its port (not killed with `ss -K`, not replaced by
// another process), and that each TLS name is served the leaf its
// certificate file holds: a handshake on loopback with that SNI
// (role.Drifter).
func (e *Edge) Drift(ctx context.Context) ([]status.DriftResource, error) {
	e.mu.Lock()
	servers := slices.Clone(e.servers)
	e.mu.Unlock()
	t := e.table.Load()
	var out []status.DriftResource
	var errs []error
	for _, l := range servers {
		key := listenerKey(l)
		got, err := l.Drift()
		if err != nil {
			errs = append(errs, fmt.Errorf("edge: listener %s: %w", key, err))
			continue
		}
		if got != "" {
			out = append(out, status.DriftResource{Kind: status.DriftListener, ID: "edge " + key,
				Expected: "listening on " + l.Addr().String(), Actual: got})
			continue
		}
		if l.TLS() && t != nil {
			out = append(out, e.certDrift(ctx, l, t)...)
		}
	}
	return out, errors.Join(errs...)
}

func (e *Edge) certDrift(ctx context.Context, l *listen.Listener, t *table) []status.DriftResource {
	addr := loopback(l.Addr())
	var out []status.DriftResource
	for name, c := range sortedCerts(t) {
		want := "certificate files: "
		if kp, err := tls.LoadX509KeyPair(c.certPath, c.keyPath); err != nil {
			want += err.Error()
		} else {
			want = describeCert(kp.Leaf)
		}
		got := servedCert(ctx, addr, name)
		if got != want {
			out = append(out, status.DriftResource{Kind: status.DriftCertificate, ID: "edge sni " + name, Expected: want, Actual: got})
		}
	}
	return out
}

// servedCert is the leaf a client asking for name gets.
func servedCert(ctx context.Context, addr, name string) string {
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	// What is compared is the leaf itself, not a chain: a self-signed or
	// private-CA certificate must be checked all the same.
	d := tls.Dialer{Config: &tls.Config{ServerName: name, InsecureSkipVerify: true}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "handshake failed: " + err.Error()
	}
	defer conn.Close()
	peer := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(peer) == 0 {
		return "no certificate"
	}
	return describeCert(peer[0])
}

func describeCert(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return fmt.Sprintf("sha256 %x (CN %s, serial %s, not after %s)", sum[:8], c.Subject.CommonName, c.SerialNumber, c.NotAfter.UTC().Format(time.DateOnly))
}

// loopback is where to reach a listener from this host: its own address,
// or loopback when it listens on every address.
func loopback(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsUnspecified() {
		return a.String()
	}
	if ta.IP.To4() != nil {
		return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
	}
	return net.JoinHostPort("::1", fmt.Sprint(ta.Port))
}

// Heal re-binds a listener on its address (the port must be free again),
// or reloads a name's certificate from its files (role.Drifter).
func (e *Edge) Heal(_ context.Context, r status.DriftResource) error {
	switch r.Kind {
	case status.DriftListener:
		return e.rebind(strings.TrimPrefix(r.ID, "edge "), r.Actual)
	case status.DriftCertificate:
		var c *certFile
		if t := e.table.Load(); t != nil {
			c, _ = t.certs.get(strings.TrimPrefix(r.ID, "edge sni "))
		}
		if c == nil {
			return fmt.Errorf("edge: heal %s: no certificate for it any more", r.ID)
		}
		return c.reload()
	}
	return fmt.Errorf("edge: cannot heal a %s", r.Kind)
}

// rebind replaces the listener of key by a new one on the same address.
func (e *Edge) rebind(key, was string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := slices.IndexFunc(e.servers, func(l *listen.Listener) bool { return listenerKey(l) == key })
	if e.closed || i < 0 {
		return fmt.Errorf("edge: heal listener %s: not configured any more", key)
	}
	l, err := e.bind(key)
	if err != nil {
		return fmt.Errorf("edge: heal listener %s (%s): %w", key, was, err)
	}
	old := e.servers[i]
	e.servers[i] = l
	l.Serve()
	old.Stop(30 * time.Second)
	// Ready again, unless another listener is down too.
	up := true
	for _, s := range e.servers {
		if got, err := s.Drift(); err != nil || got != "" {
			up = false
		}
	}
	if up {
		e.serveErr.Store(nil)
	}
	e.log.Info("listener re-bound", "listener", key, "was", was)
	return nil
}

// sortedCerts is t's certificates in the order of their host names.
func sortedCerts(t *table) iter.Seq2[string, *certFile] {
	byHost := map[string]*certFile{}
	for h, c := range t.certs.all() {
		byHost[h] = c
	}
	return func(yield func(string, *certFile) bool) {
		for _, h := range slices.Sorted(maps.Keys(byHost)) {
			if !yield(h, byHost[h]) {
				return
			}
		}
	}
}
