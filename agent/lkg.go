package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/intercloud/intercloud/config"
)

// lastKnownGood is what a node serves from while the store is away. It
// names the store cluster its revision came from: revision numbers of two
// clusters say nothing about each other (a store rebuilt from scratch
// starts at revision 1 again).
type lastKnownGood struct {
	Cluster  string           `json:"cluster"`
	Snapshot *config.Snapshot `json:"snapshot"`
}

func (a *Agent) lkgPath() string { return filepath.Join(a.opt.StateDir, "snapshot.json") }

// saveLastKnownGood hands l to the writer, replacing one not written yet:
// a large site takes tens of milliseconds to encode and sync, which the
// node's status report need not wait for, and only the newest matters.
func (a *Agent) saveLastKnownGood(l lastKnownGood) {
	select {
	case <-a.lkgQueue:
	default:
	}
	a.lkgQueue <- l
}

// writeLastKnownGoods writes what saveLastKnownGood hands it until ctx
// ends, then the last one still waiting.
func (a *Agent) writeLastKnownGoods(ctx context.Context) {
	write := func(l lastKnownGood) {
		if err := writeLastKnownGood(a.lkgPath(), l); err != nil {
			a.log.Warn("could not save last known good snapshot", "err", err)
		}
	}
	for {
		select {
		case l := <-a.lkgQueue:
			write(l)
		case <-ctx.Done():
			select {
			case l := <-a.lkgQueue:
				write(l)
			default:
			}
			return
		}
	}
}

func readLastKnownGood(path string) (lastKnownGood, error) {
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

// writeLastKnownGood writes atomically: a crash leaves the old file or the
// new one, never half of one.
func writeLastKnownGood(path string, l lastKnownGood) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
