package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/intercloud/intercloud/config"
)

// MemberConfig describes one embedded etcd member.
type MemberConfig struct {
	Name    string // member name, default "default"
	DataDir string
	// Client and Peer are host:port addresses served over plain HTTP.
	Client string
	Peer   string
	// InitialCluster is "name=http://peer,..." for a multi-member cluster;
	// empty means a single member.
	InitialCluster string
	// Existing joins a cluster that already runs (initial-cluster-state existing).
	Existing bool
}

// Member is a running embedded etcd member.
type Member struct {
	etcd      *embed.Etcd
	endpoints []string
	closeOnce sync.Once
}

// StartMember starts an embedded etcd member and waits until it serves.
// Data survives restarts under DataDir, so a second start continues from
// the stored state.
func StartMember(ctx context.Context, mc MemberConfig) (*Member, error) {
	if mc.Name == "" {
		mc.Name = "default"
	}
	// The site's store.listen and store.peer come rendered; a member
	// started without a site gets the same figures, from the same place.
	if mc.Client == "" {
		mc.Client = config.DefaultStoreListen
	}
	if mc.Peer == "" {
		mc.Peer = config.DefaultStorePeer
	}
	if err := os.MkdirAll(mc.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store data dir %s: %w", mc.DataDir, err)
	}
	client, err := url.Parse("http://" + mc.Client)
	if err != nil {
		return nil, fmt.Errorf("store client address %q: %w", mc.Client, err)
	}
	peer, err := url.Parse("http://" + mc.Peer)
	if err != nil {
		return nil, fmt.Errorf("store peer address %q: %w", mc.Peer, err)
	}
	cfg := embed.NewConfig()
	cfg.Name = mc.Name
	cfg.Dir = mc.DataDir
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = mc.InitialCluster
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = mc.Name + "=" + peer.String()
	}
	if mc.Existing {
		cfg.ClusterState = embed.ClusterStateFlagExisting
	}
	cfg.InitialClusterToken = "intercloud"
	// etcd's own logging would drown ours (its warnings too: a simple-token
	// notice at every start, slow disks under load); its errors go to
	// stderr (JSON), so that why a member stopped is known.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(errorLogger(mc.Name))
	// History does not need etcd's old versions (revisions are rebuilt
	// from their undo, see README.md); the controller compacts when it
	// prunes, and this bounds node status churn when no controller runs.
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = "24h"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd %s: %w", mc.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd %s: %w", mc.Name, err)
	case <-ctx.Done():
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedded etcd %s not ready: %w", mc.Name, ctx.Err())
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, errors.New("embedded etcd " + mc.Name + " not ready after 60s")
	}
	return &Member{etcd: e, endpoints: []string{client.String()}}, nil
}

// Endpoints are the member's client URLs.
func (m *Member) Endpoints() []string { return m.endpoints }

// Err reports a fatal error of the running member.
func (m *Member) Err() <-chan error { return m.etcd.Err() }

// Stopped is closed when the member's etcd server has stopped.
func (m *Member) Stopped() <-chan struct{} { return m.etcd.Server.StopNotify() }

// Close stops the member; it may be called more than once.
func (m *Member) Close() { m.closeOnce.Do(m.etcd.Close) }

// ParseEndpoints splits a comma-separated list and adds http:// where missing.
func ParseEndpoints(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if !strings.Contains(e, "://") {
			e = "http://" + e
		}
		out = append(out, e)
	}
	return out
}

// errorLogger is etcd's logger: errors, as JSON lines on stderr, named
// after the member.
func errorLogger(name string) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(os.Stderr), zap.ErrorLevel)
	return zap.New(core).Named("etcd").With(zap.String("member", name))
}
