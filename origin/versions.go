package origin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/intercloud/intercloud/internal/fsutil"
)

// CurrentLink is the name of the pointer to the active version inside the
// root: a symlink whose target is the version's directory name.
const CurrentLink = "current"

// ErrNoVersion means the root has no active version yet.
var ErrNoVersion = errors.New("no active version (run 'intercloud origin activate')")

// ErrVersionExists means a deploy named a version that is already there;
// versions are immutable once written.
var ErrVersionExists = errors.New("version already exists")

// ValidVersion checks a version name: it becomes a directory name and an
// HTTP header value, so it is kept to a safe alphabet.
func ValidVersion(v string) error {
	if v == "" || len(v) > 128 {
		return fmt.Errorf("version %q: must be 1 to 128 characters", v)
	}
	if v == CurrentLink {
		return fmt.Errorf("version %q: reserved name", v)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			(i > 0 && (c == '.' || c == '_' || c == '-'))
		if !ok {
			return fmt.Errorf("version %q: only letters, digits and, after the first character, '.', '_', '-'", v)
		}
	}
	return nil
}

// Active returns the version the current pointer names.
func Active(root string) (string, error) {
	t, err := os.Readlink(filepath.Join(root, CurrentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return "", ErrNoVersion
	}
	if err != nil {
		return "", fmt.Errorf("read current version: %w", err)
	}
	if err := ValidVersion(t); err != nil {
		return "", fmt.Errorf("current pointer: %w", err)
	}
	return t, nil
}

// VersionInfo describes one version directory.
type VersionInfo struct {
	Name   string `json:"name"`
	Active bool   `json:"active"`
}

// Versions lists the versions under root, sorted by name.
func Versions(root string) ([]VersionInfo, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	active, err := Active(root)
	if err != nil && !errors.Is(err, ErrNoVersion) {
		return nil, err
	}
	var out []VersionInfo
	for _, e := range ents {
		if !e.IsDir() || ValidVersion(e.Name()) != nil {
			continue
		}
		out = append(out, VersionInfo{Name: e.Name(), Active: e.Name() == active})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Activate points current at version with one atomic rename of a new
// symlink over the old one: a reader sees the old version or the new one,
// never neither.
func Activate(root, version string) error {
	if err := ValidVersion(version); err != nil {
		return err
	}
	st, err := os.Stat(filepath.Join(root, version))
	if err != nil {
		return fmt.Errorf("activate %s: %w", version, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("activate %s: not a directory", version)
	}
	// What drift checks compare the live version with, and restore from.
	if _, err := RecordManifest(root, version); err != nil {
		return fmt.Errorf("activate %s: %w", version, err)
	}
	tmp := filepath.Join(root, ".current-"+randHex(8))
	if err := os.Symlink(version, tmp); err != nil {
		return fmt.Errorf("activate %s: %w", version, err)
	}
	if err := os.Rename(tmp, filepath.Join(root, CurrentLink)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("activate %s: %w", version, err)
	}
	return fsutil.SyncDir(root)
}

// DeployResult says what Deploy did.
type DeployResult struct {
	Version string
	Files   int
	Bytes   int64
	// Skipped lists hidden entries of the source, never copied.
	Skipped []string
	// Existed is true when an unnamed deploy matched a version already
	// there (same content): nothing was written.
	Existed bool
}

// Deploy copies the tree src into root as a new version, atomically: the
// files go to a hidden temporary directory, are fsynced, and the directory
// is renamed into place. Without a version name the name is derived from
// the content, so deploying the same tree twice is a no-op. Hidden files
// are skipped; symlinks are copied as the file they point to when that
// file is inside src, and refused otherwise.
func Deploy(root, src, version string) (DeployResult, error) {
	var res DeployResult
	if version != "" {
		if err := ValidVersion(version); err != nil {
			return res, err
		}
	}
	srcAbs, err := filepath.Abs(src)
	if err != nil {
		return res, fmt.Errorf("deploy: %w", err)
	}
	if srcAbs, err = filepath.EvalSymlinks(srcAbs); err != nil {
		return res, fmt.Errorf("deploy: source: %w", err)
	}
	if st, err := os.Stat(srcAbs); err != nil || !st.IsDir() {
		return res, fmt.Errorf("deploy: source %s is not a directory", src)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return res, fmt.Errorf("deploy: root: %w", err)
	}
	if version != "" {
		if _, err := os.Lstat(filepath.Join(root, version)); err == nil {
			return res, fmt.Errorf("deploy %s: %w", version, ErrVersionExists)
		}
	}
	tmp, err := os.MkdirTemp(root, ".deploy-")
	if err != nil {
		return res, fmt.Errorf("deploy: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return res, fmt.Errorf("deploy: %w", err)
	}
	tree := sha256.New()
	err = filepath.WalkDir(srcAbs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(srcAbs, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			res.Skipped = append(res.Skipped, rel)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(tmp, rel)
		switch t := d.Type(); {
		case t.IsDir():
			fmt.Fprintf(tree, "d %s\n", filepath.ToSlash(rel))
			return os.Mkdir(dst, 0o755)
		case t&fs.ModeSymlink != 0:
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("symlink %s: %w", rel, err)
			}
			if !within(srcAbs, target) {
				return fmt.Errorf("symlink %s points outside the source (%s)", rel, target)
			}
			st, err := os.Stat(target)
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("symlink %s: only links to regular files are copied", rel)
			}
			p = target
		case !t.IsRegular():
			return fmt.Errorf("%s: not a regular file, directory or symlink", rel)
		}
		n, sum, err := copyFile(p, dst)
		if err != nil {
			return err
		}
		fmt.Fprintf(tree, "f %s %x\n", filepath.ToSlash(rel), sum)
		res.Files++
		res.Bytes += n
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("deploy: %w", err)
	}
	if err := syncTree(tmp); err != nil {
		return res, fmt.Errorf("deploy: %w", err)
	}
	if version == "" {
		version = "c" + hex.EncodeToString(tree.Sum(nil)[:6])
		if _, err := os.Lstat(filepath.Join(root, version)); err == nil {
			res.Version, res.Existed = version, true
			return res, nil
		}
	}
	res.Version = version
	// rename(2) onto an existing non-empty directory fails, so a racing
	// deploy of the same name cannot overwrite a version.
	if err := os.Rename(tmp, filepath.Join(root, version)); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
			return res, fmt.Errorf("deploy %s: %w", version, ErrVersionExists)
		}
		return res, fmt.Errorf("deploy %s: %w", version, err)
	}
	ok = true
	return res, fsutil.SyncDir(root)
}

// copyFile writes src to dst (new), fsyncs it and returns its length and
// SHA-256.
func copyFile(src, dst string) (int64, []byte, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, nil, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, nil, fmt.Errorf("copy %s: %w", src, err)
	}
	return n, h.Sum(nil), nil
}

// syncTree fsyncs every directory of a tree (files were synced when
// written), so that the rename publishing it cannot outrun its entries.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return fsutil.SyncDir(p)
		}
		return nil
	})
}

func within(base, p string) bool {
	rel, err := filepath.Rel(base, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
