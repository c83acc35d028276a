package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/intercloud/intercloud/agent"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/controller"
	"github.com/intercloud/intercloud/internal/admin"
	"github.com/intercloud/intercloud/store"
)

func init() {
	register(command{name: "up", summary: "run everything on this machine: embedded store, controller, every node", run: runUp})
	register(command{name: "controller", summary: "run the controller (and the embedded store unless --store is given)", run: runController})
	register(command{name: "node", summary: "run a node agent: its roles from the store", run: runNode})
	register(command{name: "store", summary: "run one embedded etcd member (for a multi-member cluster)", run: runStoreMember})
}

// paramFlags collects repeated --param name=value.
type paramFlags map[string]string

func (p paramFlags) String() string { return "" }
func (p paramFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("--param wants name=value, got %q", v)
	}
	p[k] = val
	return nil
}

// loadDir loads and renders the config directory.
func loadDir(dir string, params map[string]string) (*config.Bundle, *config.Snapshot, error) {
	b, err := config.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	snap, err := b.Render(params)
	if err != nil {
		return nil, nil, err
	}
	return b, snap, nil
}

// controlPlane is a running store (when embedded) and controller.
type controlPlane struct {
	member    *store.Member
	endpoints []string
	store     *store.Store
	ctl       *controller.Controller
	admin     *admin.Server
	wg        sync.WaitGroup
}

// startControlPlane starts the embedded store unless endpoints are given,
// then the controller with its API and health checks.
func startControlPlane(ctx context.Context, log *slog.Logger, site *config.Site, endpoints []string) (*controlPlane, error) {
	cp := &controlPlane{}
	if len(endpoints) == 0 {
		endpoints = site.Store.Endpoints
	}
	if len(endpoints) == 0 {
		log.Info("starting embedded store", "client", site.Store.Listen, "dataDir", site.Store.DataDir)
		m, err := store.StartMember(ctx, store.MemberConfig{Name: site.Name, DataDir: site.Store.DataDir,
			Client: site.Store.Listen, Peer: site.Store.Peer})
		if err != nil {
			return nil, err
		}
		cp.member = m
		endpoints = m.Endpoints()
	}
	cp.endpoints = endpoints
	s, err := store.Open(endpoints)
	if err != nil {
		cp.close()
		return nil, err
	}
	cp.store = s
	token, err := controller.LoadOrCreateToken(controller.TokenPath(site))
	if err != nil {
		cp.close()
		return nil, err
	}
	cp.admin = admin.New(func() error { return nil })
	cp.ctl = controller.New(controller.Options{Store: s, Logger: log.With("component", "controller"), Registry: cp.admin.Registry, Token: token})
	cp.ctl.Routes(cp.admin.Mux)
	if err := cp.admin.Listen(site.Controller.Admin); err != nil {
		cp.close()
		return nil, err
	}
	log.Info("controller API listening", "addr", cp.admin.Addr(), "store", strings.Join(endpoints, ","))
	cp.wg.Add(5)
	go func() { defer cp.wg.Done(); _ = cp.admin.Serve(ctx, log) }()
	go func() { defer cp.wg.Done(); cp.ctl.RunHealth(ctx) }()
	go func() { defer cp.wg.Done(); cp.ctl.RunRollouts(ctx) }()
	go func() { defer cp.wg.Done(); cp.ctl.RunHistory(ctx) }()
	go func() { defer cp.wg.Done(); cp.ctl.RunMetrics(ctx, controller.DefaultScrapeInterval) }()
	return cp, nil
}

// wait blocks until the goroutines stop (after ctx ends), then closes.
func (cp *controlPlane) wait() {
	cp.wg.Wait()
	cp.close()
}

func (cp *controlPlane) close() {
	if cp.store != nil {
		cp.store.Close()
	}
	if cp.member != nil {
		cp.member.Close()
	}
}

// applyFiles applies the rendered files: on first start always, later only
// when asked (SIGHUP), so that a restart keeps the stored state.
func applyFiles(ctx context.Context, log *slog.Logger, cp *controlPlane, snap *config.Snapshot, force bool) {
	cur, _, err := cp.store.Current(ctx)
	if err != nil {
		log.Error("read current revision", "err", err)
		return
	}
	if cur != nil && !force {
		if cur.Hash != config.Hash(snap) {
			log.Info("starting from the stored revision; the files differ from it (apply them with 'intercloud apply -f DIR' or SIGHUP)", "revision", cur.Revision)
		} else {
			log.Info("starting from the stored revision", "revision", cur.Revision)
		}
		return
	}
	res, err := cp.ctl.Apply(ctx, snap, "apply files")
	if err != nil {
		log.Error("apply files", "err", err)
		return
	}
	if res.Changed {
		log.Info("files applied", "revision", res.Revision, "changes", len(res.Changes))
	} else {
		log.Info("files unchanged", "revision", res.Revision)
	}
}

// hangups returns a channel of SIGHUP.
func hangups() chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	return c
}

func runUp(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := fs.String("f", "examples/quickstart", "config directory (site and distributions)")
	params := paramFlags{}
	fs.Var(params, "param", "set a parameter: name=value or dist.name=value (repeatable)")
	newLog := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLog()
	_, snap, err := loadDir(*dir, params)
	if err != nil {
		return err
	}
	site := &snap.Site
	cp, err := startControlPlane(ctx, log, site, nil)
	if err != nil {
		return err
	}
	applyFiles(ctx, log, cp, snap, false)

	var agents []*agent.Agent
	var wg sync.WaitGroup
	agentStore, err := store.Open(cp.endpoints)
	if err != nil {
		return err
	}
	for _, n := range site.Nodes {
		a := agent.New(agent.Options{Node: n.Name, Store: agentStore,
			StateDir: filepath.Join(filepath.Dir(filepath.Clean(site.Store.DataDir)), "nodes", n.Name),
			Logger:   log.With("component", "agent")})
		agents = append(agents, a)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(ctx); err != nil {
				log.Error("agent stopped", "node", n.Name, "err", err)
			}
		}()
	}
	go func() {
		if waitConverged(ctx, cp.ctl, 30*time.Second) {
			printTour(ctx, os.Stdout, *dir, cp.ctl)
		}
	}()
	reloadOnHangup(ctx, log, cp, *dir, params, newNotifier(log))
	log.Info("stopping")
	wg.Wait()
	// Clients first: the embedded etcd waits for open watches before it stops.
	agentStore.Close()
	cp.wait()
	return nil
}

// reloadOnHangup applies the files again on every SIGHUP until ctx ends.
func reloadOnHangup(ctx context.Context, log *slog.Logger, cp *controlPlane, dir string, params paramFlags, sd *notifier) {
	hup := hangups()
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading files", "dir", dir)
			sd.reloading()
			if _, snap, err := loadDir(dir, params); err != nil {
				log.Error("reload: files not applied", "err", err)
			} else {
				applyFiles(ctx, log, cp, snap, true)
			}
			sd.reloaded("controller serving on " + cp.admin.Addr())
		}
	}
}

// waitConverged waits until every node of the site runs the current revision.
func waitConverged(ctx context.Context, ctl *controller.Controller, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if st, err := ctl.Status(ctx); err == nil && st.Revision > 0 {
			all := true
			for _, n := range st.Nodes {
				if n.State != "current" {
					all = false
				}
			}
			if all {
				return true
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

func runController(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	dir := fs.String("f", "", "config directory (site and distributions)")
	storeURLs := fs.String("store", "", "external etcd endpoints (comma-separated); empty: embedded")
	params := paramFlags{}
	fs.Var(params, "param", "set a parameter: name=value or dist.name=value (repeatable)")
	newLog := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-f DIR is required")
	}
	log := newLog()
	_, snap, err := loadDir(*dir, params)
	if err != nil {
		return err
	}
	cp, err := startControlPlane(ctx, log, &snap.Site, store.ParseEndpoints(*storeURLs))
	if err != nil {
		return err
	}
	applyFiles(ctx, log, cp, snap, false)
	sd := newNotifier(log)
	sd.run(ctx, httpAlive("http://"+cp.admin.Addr()+"/healthz"))
	sd.ready("controller serving on " + cp.admin.Addr())
	reloadOnHangup(ctx, log, cp, *dir, params, sd)
	cp.wait()
	return nil
}

func runNode(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	name := fs.String("name", "", "node name (as in the site)")
	storeURLs := fs.String("store", "http://"+config.DefaultStoreListen, "etcd endpoints (comma-separated)")
	stateDir := fs.String("state-dir", "", "where the last known good snapshot is kept (default .intercloud/nodes/NAME)")
	adminAddr := fs.String("admin", "", "admin address (default: the node's listen.admin)")
	newLog := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--name is required")
	}
	log := newLog()
	if *stateDir == "" {
		*stateDir = filepath.Join(".intercloud", "nodes", *name)
	}
	s, err := store.Open(store.ParseEndpoints(*storeURLs))
	if err != nil {
		return err
	}
	defer s.Close()
	hup := hangups()
	defer signal.Stop(hup)
	reload := make(chan os.Signal)
	a := agent.New(agent.Options{Node: *name, Store: s, StateDir: *stateDir, Logger: log, Admin: *adminAddr, Reload: reload, OwnProcess: true})
	sd := newNotifier(log)
	sd.run(ctx, a.Alive)
	go func() {
		select {
		case <-a.Serving():
			sd.ready("node " + *name + " serving")
		case <-ctx.Done():
		}
	}()
	go forwardReloads(ctx, hup, reload, a, sd)
	return a.Run(ctx)
}

// forwardReloads hands each SIGHUP to the agent and tells systemd when
// the agent's loop has done the reload (it takes events in order, so its
// answer to Alive comes after the reload).
func forwardReloads(ctx context.Context, hup <-chan os.Signal, reload chan<- os.Signal, a *agent.Agent, sd *notifier) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-hup:
			sd.reloading()
			select {
			case reload <- sig:
			case <-ctx.Done():
				return
			}
			if a.Alive(ctx) == nil {
				sd.reloaded("node serving")
			}
		}
	}
}

func runStoreMember(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("store", flag.ContinueOnError)
	name := fs.String("name", "default", "member name")
	dataDir := fs.String("data-dir", config.DefaultStoreDataDir, "data directory")
	listen := fs.String("listen", config.DefaultStoreListen, "client address")
	peer := fs.String("peer", config.DefaultStorePeer, "peer address")
	initial := fs.String("initial-cluster", "", "name=http://peer,... of every member (empty: single member)")
	existing := fs.Bool("existing", false, "join a running cluster")
	newLog := logFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := newLog()
	m, err := store.StartMember(ctx, store.MemberConfig{Name: *name, DataDir: *dataDir, Client: *listen, Peer: *peer,
		InitialCluster: *initial, Existing: *existing})
	if err != nil {
		return err
	}
	defer m.Close()
	log.Info("store member serving", "name", *name, "client", *listen, "peer", *peer)
	sd := newNotifier(log)
	// etcd answers /version on its client address without a quorum: the
	// watchdog restarts a member that stopped serving, not one whose
	// peers are gone.
	sd.run(ctx, httpAlive(m.Endpoints()[0]+"/version"))
	sd.ready("store member " + *name + " serving clients on " + *listen)
	// A member that stops on its own (a fatal error, removed from the
	// cluster) fails the process, saying why, so a supervisor restarts it.
	select {
	case <-ctx.Done():
		return nil
	case err := <-m.Err():
		if err == nil {
			err = errors.New("etcd reported its end without an error")
		}
		return fmt.Errorf("store member %s stopped: %w", *name, err)
	case <-m.Stopped():
		return fmt.Errorf("store member %s stopped: etcd server ended (see its warnings above)", *name)
	}
}

// sortedRoles prints roles in a stable order.
func sortedRoles(rs []config.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}
