package origin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/intercloud/intercloud/internal/fsutil"
	"github.com/intercloud/intercloud/status"
)

// What activation records beside the versions, both hidden from Versions
// and from requests: the manifest of every version activated, and a copy
// of each file's content by hash, which drift heals restore from (a
// version directory can be edited in place; the store is ours alone).
const (
	manifestDir = ".intercloud/manifests"
	objectDir   = ".intercloud/objects"
)

// Manifest is what a version held when it was activated.
type Manifest struct {
	Version string                   `json:"version"`
	Files   map[string]ManifestEntry `json:"files"` // by slash path inside the version
}

// ManifestEntry is one regular file of a version.
type ManifestEntry struct {
	Size   int64       `json:"size"`
	MTime  time.Time   `json:"mtime"`
	Mode   fs.FileMode `json:"mode"`
	SHA256 string      `json:"sha256"`
}

func (e ManifestEntry) String() string {
	return fmt.Sprintf("size %d, mtime %s, mode %v, sha256 %.12s", e.Size, e.MTime.UTC().Format(time.RFC3339Nano), e.Mode, e.SHA256)
}

func manifestPath(root, version string) string {
	return filepath.Join(root, manifestDir, version+".json")
}

func objectPath(root, sum string) string { return filepath.Join(root, objectDir, sum) }

// RecordManifest hashes every file of version, stores a copy of each
// content not stored yet and writes the version's manifest. Activate calls
// it before the switch; drift checks call it for a version activated
// before manifests existed (its content as found is then trusted).
func RecordManifest(root, version string) (*Manifest, error) {
	if err := ValidVersion(version); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, version)
	m := &Manifest{Version: version, Files: map[string]ManifestEntry{}}
	for _, d := range []string{manifestDir, objectDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("record manifest of %s: %w", version, err)
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		sum, err := storeObject(root, p)
		if err != nil {
			return err
		}
		m.Files[filepath.ToSlash(rel)] = ManifestEntry{Size: st.Size(), MTime: st.ModTime(), Mode: st.Mode().Perm(), SHA256: sum}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record manifest of %s: %w", version, err)
	}
	if err := writeManifest(root, m); err != nil {
		return nil, fmt.Errorf("record manifest of %s: %w", version, err)
	}
	return m, nil
}

func writeManifest(root string, m *Manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return fsutil.WriteFile(manifestPath(root, m.Version), b, 0o644)
}

// storeObject copies the file at p into the object store under its
// SHA-256, unless that content is there already, and returns the sum.
func storeObject(root, p string) (string, error) {
	sum, err := fileSum(p)
	if err != nil {
		return "", err
	}
	dst := objectPath(root, sum)
	if _, err := os.Stat(dst); err == nil {
		return sum, nil
	}
	tmp := filepath.Join(root, objectDir, ".tmp-"+randHex(8))
	if _, _, err := copyFile(p, tmp); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return sum, nil
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadManifest reads what activation recorded for version.
func ReadManifest(root, version string) (*Manifest, error) {
	b, err := os.ReadFile(manifestPath(root, version))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", version, err)
	}
	return &m, nil
}

// VersionDrift compares the files of version with its manifest: a file
// missing, changed or not in the manifest. Size and mode are compared, and
// the content only when the mtime moved (rewriting a file sets it; so do
// touch, cp and a checkout, which change nothing). A version without a
// manifest gets one recorded from what it holds now.
func VersionDrift(root, version string) ([]status.DriftResource, error) {
	m, err := ReadManifest(root, version)
	if errors.Is(err, fs.ErrNotExist) {
		_, err = RecordManifest(root, version)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, version)
	var out []status.DriftResource
	res := func(rel, want, got string) {
		out = append(out, status.DriftResource{Kind: status.DriftFile, ID: version + "/" + rel, Expected: want, Actual: got})
	}
	seen := map[string]bool{}
	touched := false
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walk: the manifest pass says so
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		want, ok := m.Files[rel]
		if !ok {
			res(rel, "absent", "present, not in the version's manifest")
			return nil
		}
		seen[rel] = true
		st, err := d.Info()
		if err != nil {
			return nil
		}
		if !d.Type().IsRegular() {
			res(rel, want.String(), "not a regular file: "+d.Type().String())
			return nil
		}
		same := st.Size() == want.Size && st.Mode().Perm() == want.Mode
		if same && !st.ModTime().Equal(want.MTime) {
			// Touched, copied or checked out again: only the content
			// says whether it changed. Same bytes: the new mtime is
			// recorded, so the file is read once.
			if sum, err := fileSum(p); err == nil && sum == want.SHA256 {
				want.MTime = st.ModTime()
				m.Files[rel] = want
				touched = true
				return nil
			}
			same = false
		}
		if !same {
			res(rel, want.String(), fmt.Sprintf("size %d, mtime %s, mode %v", st.Size(), st.ModTime().UTC().Format(time.RFC3339Nano), st.Mode().Perm()))
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("check version %s: %w", version, err)
	}
	for rel, want := range m.Files {
		if !seen[rel] {
			res(rel, want.String(), "absent")
		}
	}
	if touched {
		if err := writeManifest(root, m); err != nil {
			return out, fmt.Errorf("check version %s: %w", version, err)
		}
	}
	return out, nil
}

// HealFile puts one file of version back as its manifest has it, from the
// object store (checked against its hash), or removes a file the manifest
// does not have. The file is replaced by one rename: a reader sees the old
// bytes or the right ones.
func HealFile(root, version, rel string) error {
	m, err := ReadManifest(root, version)
	if err != nil {
		return err
	}
	if strings.HasPrefix(rel, "/") || !filepath.IsLocal(filepath.FromSlash(rel)) {
		return fmt.Errorf("heal %s/%s: not a path inside the version", version, rel)
	}
	p := filepath.Join(root, version, filepath.FromSlash(rel))
	want, ok := m.Files[rel]
	if !ok {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("heal %s/%s: remove what the version never had: %w", version, rel, err)
		}
		return nil
	}
	obj := objectPath(root, want.SHA256)
	if sum, err := fileSum(obj); err != nil || sum != want.SHA256 {
		return fmt.Errorf("heal %s/%s: the version's store has no intact copy of sha256 %.12s", version, rel, want.SHA256)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("heal %s/%s: %w", version, rel, err)
	}
	// Hidden, so a request never sees the half-written copy.
	tmp := filepath.Join(filepath.Dir(p), ".heal-"+randHex(8))
	if _, _, err := copyFile(obj, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("heal %s/%s: %w", version, rel, err)
	}
	if err := errors.Join(os.Chmod(tmp, want.Mode), os.Chtimes(tmp, want.MTime, want.MTime)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("heal %s/%s: %w", version, rel, err)
	}
	if st, err := os.Lstat(p); err == nil && st.IsDir() {
		os.Remove(tmp)
		return fmt.Errorf("heal %s/%s: a directory is in the way", version, rel)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("heal %s/%s: %w", version, rel, err)
	}
	return fsutil.SyncDir(filepath.Dir(p))
}

// Drift checks the content listener (still our socket on its port) and
// the active version's files against what its activation recorded
// (role.Drifter).
func (r *Role) Drift(context.Context) ([]status.DriftResource, error) {
	var out []status.DriftResource
	r.mu.Lock()
	ln := r.ln
	r.mu.Unlock()
	if ln != nil {
		got, err := ln.Drift()
		if err != nil {
			return nil, fmt.Errorf("origin: listener %s: %w", ln.Configured(), err)
		}
		if got != "" {
			out = append(out, status.DriftResource{Kind: status.DriftListener, ID: "origin " + ln.Configured(),
				Expected: "listening on " + ln.Addr().String(), Actual: got})
		}
	}
	root := r.root()
	if root == "" {
		return out, nil
	}
	v, err := Active(root)
	if errors.Is(err, ErrNoVersion) {
		return out, nil // not ready, which Ready says; nothing owned yet
	}
	if err != nil {
		return out, err
	}
	files, err := VersionDrift(root, v)
	return append(out, files...), err
}

// Heal re-binds the content listener or restores one file of the active
// version (role.Drifter).
func (r *Role) Heal(_ context.Context, res status.DriftResource) error {
	switch res.Kind {
	case status.DriftListener:
		return r.rebind(res)
	case status.DriftFile:
	default:
		return fmt.Errorf("origin: cannot heal a %s", res.Kind)
	}
	root := r.root()
	version, rel, ok := strings.Cut(res.ID, "/")
	if root == "" || !ok {
		return fmt.Errorf("origin: heal %s: not a file of this origin", res.ID)
	}
	if v, err := Active(root); err != nil || v != version {
		return fmt.Errorf("origin: heal %s: version %s is no longer active", res.ID, version)
	}
	return HealFile(root, version, rel)
}

func (r *Role) root() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.cur.Load() == nil {
		return ""
	}
	return r.cfg.Root
}

// rebind replaces the content listener by a new one on its address (the
// port must be free again).
func (r *Role) rebind(res status.DriftResource) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.ln == nil || "origin "+r.ln.Configured() != res.ID {
		return fmt.Errorf("origin: heal %s: not the running listener", res.ID)
	}
	ln, err := r.bind(r.ln.Configured())
	if err != nil {
		return fmt.Errorf("origin: heal listener (%s): %w", res.Actual, err)
	}
	old := r.ln
	r.ln = ln
	ln.Serve()
	old.Stop(30 * time.Second)
	r.o.Logger.Info("origin listener re-bound", "listen", ln.Addr().String(), "was", res.Actual)
	return nil
}
