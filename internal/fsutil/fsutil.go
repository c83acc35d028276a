// Package fsutil writes files so that a crash leaves the old content or the
// new, never a mix, and the change survives a power loss once a call
// returns.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SyncDir fsyncs a directory, so that the entries created, renamed or
// removed in it are on disk.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// WriteFile replaces path with b, with mode perm, atomically and durably:
// ReplaceFile, then the directory fsynced. On an error path is as it was.
func WriteFile(path string, b []byte, perm fs.FileMode) error {
	if err := ReplaceFile(path, b, perm); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// ReplaceFile replaces path with b, with mode perm, atomically: b goes to a
// hidden temporary file beside path (readers never see it half-written),
// which is fsynced and renamed over path. The rename is durable once the
// caller fsyncs the directory (SyncDir): one fsync for a batch of files.
// On an error path is as it was and the temporary file is gone.
func ReplaceFile(path string, b []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(b)
	if err := errors.Join(werr, tmp.Chmod(perm), tmp.Sync(), tmp.Close()); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
