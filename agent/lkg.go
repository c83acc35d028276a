package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/fsutil"
)

// lastKnownGood is what a node serves from while the store is away. It
// names the store cluster its revision came from: revision numbers of two
// clusters say nothing about each other (a store rebuilt from scratch
// starts at revision 1 again).
type lastKnownGood struct {
	Cluster  string           `json:"cluster"`
	Snapshot *config.Snapshot `json:"snapshot"`
}

// The last known good snapshot is kept as a log, so that a one-line change
// to a site of 10,000 distributions writes one small file instead of the
// whole site again:
//
//	lkg/base-R.json        the whole snapshot of revision R
//	lkg/dist-R-NAME.json   distribution NAME as revision R changed it
//	lkg/manifest.json      which base, and which file holds each
//	                       distribution changed or removed since it
//
// Files are written (and synced) before the manifest that names them is
// renamed into place, so a crash leaves the old revision or the new one,
// never half of one. A new base is written when the changes since the last
// one reach a quarter of the site.
const (
	lkgDir      = "lkg"
	lkgManifest = "manifest.json"
	// legacyLKG is the single-file layout of earlier versions, still read.
	legacyLKG = "snapshot.json"
)

// lkgIndex is lkg/manifest.json.
type lkgIndex struct {
	Cluster  string    `json:"cluster"`
	Revision int64     `json:"revision"`
	Hash     string    `json:"hash"`
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason,omitempty"`
	// Base is the revision whose whole snapshot the base file holds.
	Base int64 `json:"base"`
	// SiteFrom names the revision whose file holds the site when it
	// changed after the base (0: the base's).
	SiteFrom int64 `json:"siteFrom,omitempty"`
	// Changed maps a distribution changed after the base to the revision
	// whose file holds it; Removed lists those gone since the base.
	Changed map[string]int64             `json:"changed,omitempty"`
	Removed []string                     `json:"removed,omitempty"`
	Outputs map[string]map[string]string `json:"outputs,omitempty"`
	// Stacks are the revision's, whole: few and small, and a Delta does
	// not say whether they changed.
	Stacks []config.Stack `json:"stacks,omitempty"`
}

func baseFile(rev int64) string { return "base-" + strconv.FormatInt(rev, 10) + ".json" }
func siteFile(rev int64) string { return "site-" + strconv.FormatInt(rev, 10) + ".json" }
func distFile(rev int64, name string) string {
	return "dist-" + strconv.FormatInt(rev, 10) + "-" + url.PathEscape(name) + ".json"
}

// lkgWrite is one snapshot to persist, with what changed since the one
// handed over before it (nil: unknown, write it whole).
type lkgWrite struct {
	lkg   lastKnownGood
	delta *config.Delta
}

// saveLastKnownGood hands l to the writer. A write not started yet is
// replaced, its changes merged into l's: only the newest matters, and the
// node's status report need not wait for the disk.
func (a *Agent) saveLastKnownGood(l lastKnownGood) {
	w := lkgWrite{lkg: l, delta: l.Snapshot.Delta}
	select {
	case old := <-a.lkgQueue:
		w.delta = mergeDeltas(old.delta, w.delta, old.lkg, l)
	default:
	}
	a.lkgQueue <- w
}

// mergeDeltas is the change from what came before a to b's revision, when
// b follows a directly within one cluster; nil when unknown.
func mergeDeltas(da, db *config.Delta, a, b lastKnownGood) *config.Delta {
	if da == nil || db == nil || a.Cluster != b.Cluster || db.Base != a.Snapshot.Revision {
		return nil
	}
	changed := map[string]bool{}
	for _, n := range da.Changed {
		changed[n] = true
	}
	removed := map[string]bool{}
	for _, n := range da.Removed {
		removed[n] = true
	}
	for _, n := range db.Changed {
		changed[n], removed[n] = true, false
	}
	for _, n := range db.Removed {
		changed[n], removed[n] = false, true
	}
	m := &config.Delta{Base: da.Base, Site: da.Site || db.Site}
	for n, ok := range changed {
		if ok {
			m.Changed = append(m.Changed, n)
		}
	}
	for n, ok := range removed {
		if ok {
			m.Removed = append(m.Removed, n)
		}
	}
	return m
}

// writeLastKnownGoods writes what saveLastKnownGood hands it until ctx
// ends, then the last one still waiting.
func (a *Agent) writeLastKnownGoods(ctx context.Context) {
	dir := filepath.Join(a.opt.StateDir, lkgDir)
	var on *lkgIndex // what is on disk
	if idx, err := readIndex(dir); err == nil {
		on = idx
	}
	write := func(w lkgWrite) {
		idx, err := writeLastKnownGood(dir, on, w)
		if err != nil {
			a.log.Warn("could not save last known good snapshot", "err", err)
			on = nil // whatever is on disk, start from a whole snapshot
			return
		}
		on = idx
		os.Remove(filepath.Join(a.opt.StateDir, legacyLKG))
	}
	for {
		select {
		case w := <-a.lkgQueue:
			write(w)
		case <-ctx.Done():
			select {
			case w := <-a.lkgQueue:
				write(w)
			default:
			}
			return
		}
	}
}

// writeLastKnownGood persists w on top of what is on disk (on, nil when
// unknown) and returns the new index.
func writeLastKnownGood(dir string, on *lkgIndex, w lkgWrite) (*lkgIndex, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	s, d := w.lkg.Snapshot, w.delta
	idx := &lkgIndex{Cluster: w.lkg.Cluster, Revision: s.Revision, Hash: s.Hash, Time: s.Time, Reason: s.Reason, Outputs: s.Outputs,
		Stacks: s.Stacks}
	incremental := on != nil && d != nil && on.Cluster == w.lkg.Cluster && on.Revision == d.Base &&
		len(on.Changed)+len(on.Removed)+len(d.Changed)+len(d.Removed) < max(len(s.Distributions)/4, 16)
	if !incremental {
		idx.Base = s.Revision
		b, err := encodeBase(w.lkg)
		if err != nil {
			return nil, err
		}
		if err := fsutil.ReplaceFile(filepath.Join(dir, baseFile(s.Revision)), b, 0o600); err != nil {
			return nil, err
		}
	} else {
		idx.Base, idx.SiteFrom = on.Base, on.SiteFrom
		idx.Changed = maps.Clone(on.Changed)
		if idx.Changed == nil {
			idx.Changed = map[string]int64{}
		}
		removed := map[string]bool{}
		for _, n := range on.Removed {
			removed[n] = true
		}
		if d.Site {
			idx.SiteFrom = s.Revision
			if err := writeFileSynced(dir, siteFile(s.Revision), &s.Site); err != nil {
				return nil, err
			}
		}
		for _, name := range d.Changed {
			dist := s.Distribution(name)
			if dist == nil {
				return nil, fmt.Errorf("revision %d: changed distribution %q is not in it", s.Revision, name)
			}
			if err := writeFileSynced(dir, distFile(s.Revision, name), dist); err != nil {
				return nil, err
			}
			idx.Changed[name] = s.Revision
			delete(removed, name)
		}
		for _, name := range d.Removed {
			delete(idx.Changed, name)
			removed[name] = true
		}
		idx.Removed = slices.Sorted(maps.Keys(removed))
	}
	if err := writeFileSynced(dir, lkgManifest, idx); err != nil {
		return nil, err
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return nil, err
	}
	removeUnreferenced(dir, idx)
	return idx, nil
}

// removeUnreferenced deletes files the index no longer names: older bases,
// superseded versions, temporaries a crash left.
func removeUnreferenced(dir string, idx *lkgIndex) {
	keep := map[string]bool{lkgManifest: true, baseFile(idx.Base): true}
	if idx.SiteFrom != 0 {
		keep[siteFile(idx.SiteFrom)] = true
	}
	for name, rev := range idx.Changed {
		keep[distFile(rev, name)] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func readIndex(dir string) (*lkgIndex, error) {
	b, err := os.ReadFile(filepath.Join(dir, lkgManifest))
	if err != nil {
		return nil, err
	}
	var idx lkgIndex
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("decode %s: %w", filepath.Join(dir, lkgManifest), err)
	}
	return &idx, nil
}

// readLastKnownGood reads the node's last known good snapshot from its
// state directory, in either layout.
func readLastKnownGood(stateDir string) (lastKnownGood, error) {
	dir := filepath.Join(stateDir, lkgDir)
	idx, err := readIndex(dir)
	if errors.Is(err, os.ErrNotExist) {
		return readLegacyLastKnownGood(filepath.Join(stateDir, legacyLKG))
	}
	if err != nil {
		return lastKnownGood{}, err
	}
	var base lastKnownGood
	if err := readJSON(filepath.Join(dir, baseFile(idx.Base)), &base); err != nil {
		return lastKnownGood{}, err
	}
	if base.Snapshot == nil {
		return lastKnownGood{}, fmt.Errorf("%s holds no snapshot", baseFile(idx.Base))
	}
	s := base.Snapshot
	if idx.SiteFrom != 0 {
		s.Site = config.Site{}
		if err := readJSON(filepath.Join(dir, siteFile(idx.SiteFrom)), &s.Site); err != nil {
			return lastKnownGood{}, err
		}
	}
	gone := map[string]bool{}
	for _, n := range idx.Removed {
		gone[n] = true
	}
	dists := s.Distributions[:0]
	for _, d := range s.Distributions {
		if !gone[d.Name] && idx.Changed[d.Name] == 0 {
			dists = append(dists, d)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(idx.Changed)) {
		var d config.Distribution
		if err := readJSON(filepath.Join(dir, distFile(idx.Changed[name], name)), &d); err != nil {
			return lastKnownGood{}, err
		}
		dists = append(dists, d)
	}
	slices.SortFunc(dists, func(a, b config.Distribution) int { return strings.Compare(a.Name, b.Name) })
	s.Distributions = dists
	s.Revision, s.Hash, s.Time, s.Reason, s.Outputs, s.Stacks = idx.Revision, idx.Hash, idx.Time, idx.Reason, idx.Outputs, idx.Stacks
	return lastKnownGood{Cluster: idx.Cluster, Snapshot: s}, nil
}

func readLegacyLastKnownGood(path string) (lastKnownGood, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return lastKnownGood{}, err
	}
	var l lastKnownGood
	if err := json.Unmarshal(b, &l); err != nil {
		return lastKnownGood{}, fmt.Errorf("decode %s: %w", path, err)
	}
	if l.Snapshot == nil {
		// Written before the store's identity was kept: a bare snapshot
		// from an unknown cluster, which any store's revision replaces.
		var s config.Snapshot
		if err := json.Unmarshal(b, &s); err != nil {
			return lastKnownGood{}, fmt.Errorf("decode %s: %w", path, err)
		}
		l.Snapshot = &s
	}
	return l, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// lastBase is the base file last encoded in this process. The nodes of
// one process (`intercloud up`) that share a store client are handed the
// same snapshot of a revision; each writes its own base file, and the
// encoding of a large site (10 MiB for 10,000 distributions) is done once.
var lastBase struct {
	sync.Mutex
	lkg lastKnownGood
	b   []byte
}

func encodeBase(lkg lastKnownGood) ([]byte, error) {
	lastBase.Lock()
	defer lastBase.Unlock()
	if lastBase.lkg == lkg && lastBase.b != nil {
		return lastBase.b, nil
	}
	b, err := json.Marshal(lkg)
	if err != nil {
		return nil, err
	}
	lastBase.lkg, lastBase.b = lkg, b
	return b, nil
}

// writeFileSynced writes v as JSON to dir/name atomically: a crash leaves
// the old file or the new one, never half of one. The batch's one
// fsutil.SyncDir makes the renames durable.
func writeFileSynced(dir, name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return fsutil.ReplaceFile(filepath.Join(dir, name), b, 0o600)
}
