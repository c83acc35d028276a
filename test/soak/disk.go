package soak

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/multicloud"
)

// The disk-full fault needs an edge whose cache has a disk tier
// (cache.disk.path, from the edge disk-tier work): its directory is a
// small tmpfs of its own, mounted before the edges start, that the fault
// fills and the heal empties. The host's disk is never filled. Sites
// without the tier (this build's soak site) make the fault a no-op that
// says so.

// diskTier is an edge's cache.disk, read through JSON so that the soak
// builds whether or not config has the field yet.
type diskTier struct {
	Path string      `json:"path"`
	Size config.Size `json:"size"`
}

// diskTiers are the edges of the site with a disk tier.
func diskTiers(site *config.Site) map[string]diskTier {
	out := map[string]diskTier{}
	for _, n := range site.Nodes {
		b, err := json.Marshal(n.Cache)
		if err != nil {
			continue
		}
		var c struct{ Disk *diskTier }
		if json.Unmarshal(b, &c) == nil && c.Disk != nil && c.Disk.Path != "" {
			out[n.Name] = *c.Disk
		}
	}
	return out
}

// mountDisks gives every disk tier of the site a tmpfs of its own, a
// little larger than the tier's limit, unmounted when the test ends.
func (r *runner) mountDisks(t *multicloud.Topology) {
	r.disks = map[string]string{}
	for node, d := range diskTiers(&t.Site.Site) {
		dir := d.Path
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(t.Dir, dir)
		}
		size := int64(d.Size) + 8<<20
		if err := os.MkdirAll(dir, 0o700); err != nil {
			r.tb.Fatalf("soak: disk tier of %s: %v", node, err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
			r.tb.Fatalf("soak: mount a tmpfs for %s's disk tier at %s: %v: %s", node, dir, err, out)
		}
		r.tb.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
		r.disks[node] = dir
	}
}

// fillDisk writes a file into the edge's disk-tier tmpfs until it is full
// and returns what removes it.
func (r *runner) fillDisk(node string) (func() error, string, error) {
	dir, ok := r.disks[node]
	if !ok {
		return nil, "disk tier not configured (no cache.disk.path for " + node + "): nothing filled", nil
	}
	path := filepath.Join(dir, "soak-fill")
	f, err := os.Create(path)
	if err != nil {
		return nil, "", fmt.Errorf("fill %s: %w", dir, err)
	}
	buf := make([]byte, 1<<20)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			f.Close()
			return nil, "", fmt.Errorf("fill %s: %w", dir, err)
		}
	}
	f.Close()
	return func() error { return os.Remove(path) }, fmt.Sprintf("%.0f MiB written: its disk tier is full", float64(n)/(1<<20)), nil
}
