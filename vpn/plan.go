package vpn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Plan is a set of tunnels prepared beside the running ones: every key
// read and the devices of new tunnels already open, so that what a bad
// revision can break breaks before anything running changes. A Plan is
// either committed or aborted, once.
type Plan struct {
	want []Tunnel
	keys map[string]Key // by key file
	// opened are the new tunnels whose device Prepare opened, by name.
	opened map[string]*tunnel
	used   bool
}

// Tunnels is what the plan runs once committed.
func (p *Plan) Tunnels() []Tunnel { return p.want }

// Prepare reads every key of want and opens the devices of the tunnels
// that do not run yet, without touching the running ones. A new tunnel
// whose UDP port a running tunnel holds (the port moves between links) is
// opened by Commit, after the old one is closed.
func (m *Manager) Prepare(ctx context.Context, want []Tunnel) (*Plan, error) {
	keys, err := readKeys(want, m.log)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errClosed
	}
	running := map[string]bool{}
	ports := map[int]bool{}
	for name, t := range m.tunnels {
		running[name] = true
		if d, err := t.get(); err == nil {
			ports[d.ListenPort] = true
		}
		ports[t.cfg.Listen] = true
	}
	m.mu.Unlock()
	p := &Plan{want: want, keys: keys, opened: map[string]*tunnel{}}
	for _, cfg := range want {
		if running[cfg.Name] || (cfg.Listen != 0 && ports[cfg.Listen]) {
			continue
		}
		t, err := openTunnel(ctx, m.h, cfg, keys[cfg.KeyFile], m.log)
		if err != nil {
			m.Abort(p)
			return nil, err
		}
		p.opened[cfg.Name] = t
	}
	return p, nil
}

// readKeys reads each key file of want once.
func readKeys(want []Tunnel, log *slog.Logger) (map[string]Key, error) {
	keys := map[string]Key{}
	for _, t := range want {
		if _, ok := keys[t.KeyFile]; ok {
			continue
		}
		k, err := ReadKeyFile(t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("link %q: %w", t.Link, err)
		}
		if _, err := k.PublicKey(); err != nil {
			return nil, fmt.Errorf("vpn: private key file %s: %w", t.KeyFile, err)
		}
		keys[t.KeyFile] = k
		if fi, err := os.Stat(t.KeyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("private key file is readable by others; chmod 600 it", "file", t.KeyFile, "mode", fi.Mode().Perm().String())
		}
	}
	return keys, nil
}

// Abort closes the devices Prepare opened; the running tunnels are
// untouched.
func (m *Manager) Abort(p *Plan) {
	if p == nil || p.used {
		return
	}
	p.used = true
	for _, t := range p.opened {
		t.close()
	}
}

// Commit makes the plan the running set: the tunnels Prepare opened join,
// running ones are reconfigured in place, removed ones are closed, and new
// ones Prepare could not open are opened now. Errors are joined; what
// could be applied stays applied and Ready reports the rest.
func (m *Manager) Commit(ctx context.Context, p *Plan) error {
	if p.used {
		return errors.New("vpn: plan already committed or aborted")
	}
	p.used = true
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		for _, t := range p.opened {
			t.close()
		}
		return errClosed
	}
	var errs []error
	var gone []PeerState
	keep := map[string]bool{}
	for _, cfg := range p.want {
		keep[cfg.Name] = true
	}
	// Removed tunnels first: a new one may take the UDP port they held.
	for name, t := range m.tunnels {
		if keep[name] {
			continue
		}
		t.close()
		delete(m.tunnels, name)
		if st, ok := m.states[name]; ok {
			st.Up, st.Reason, st.Since = false, "tunnel removed", time.Now()
			gone = append(gone, st)
		}
		delete(m.states, name)
		delete(m.errs, name)
		t.log.Info("tunnel removed")
	}
	for _, cfg := range p.want {
		key := p.keys[cfg.KeyFile]
		if t, ok := p.opened[cfg.Name]; ok {
			m.tunnels[cfg.Name] = t
			continue
		}
		if t, ok := m.tunnels[cfg.Name]; ok {
			if err := t.update(ctx, m.h, cfg, key); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		t, err := openTunnel(ctx, m.h, cfg, key, m.log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m.tunnels[cfg.Name] = t
	}
	m.applied = len(errs) == 0
	m.mu.Unlock()
	m.notify(gone)
	// A first verdict now rather than one interval later.
	m.poll(time.Now())
	return errors.Join(errs...)
}
