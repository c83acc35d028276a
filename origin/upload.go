package origin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/intercloud/intercloud/internal/httpsem"
)

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.gather, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// authorize checks the bearer token. Without a token file uploads (and
// reads of inactive versions) are disabled: 405 says the method is not
// there at all; a missing token is 401 and a wrong one 403.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (int, bool) {
	tok := s.set.Load().token
	if tok == nil {
		w.Header()["Allow"] = allowRead
		code, _ := plain(w, http.StatusMethodNotAllowed, "uploads are disabled on this origin")
		return code, false
	}
	auth := r.Header.Get("Authorization")
	scheme, cred, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="intercloud-origin"`)
		code, _ := plain(w, http.StatusUnauthorized, "bearer token required")
		return code, false
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), tok) != 1 {
		code, _ := plain(w, http.StatusForbidden, "invalid token")
		return code, false
	}
	return 0, true
}

// writeTarget checks what every write needs: the token, a valid version
// that is not the active one (an active version is immutable: change it by
// writing another version and activating that), and a clean file path.
func (s *Server) writeTarget(w http.ResponseWriter, r *http.Request) (version, rel string, code int, ok bool) {
	if code, ok := s.authorize(w, r); !ok {
		return "", "", code, false
	}
	rel, err := cleanPath(r.URL.Path)
	if err != nil {
		code, _ := s.rejectPath(w, err)
		return "", "", code, false
	}
	if rel == "" || strings.HasSuffix(r.URL.Path, "/") {
		code, _ := plain(w, http.StatusBadRequest, "a write names a file, not a directory")
		return "", "", code, false
	}
	vh := r.Header[VersionHeader]
	if len(vh) != 1 || ValidVersion(vh[0]) != nil {
		code, _ := plain(w, http.StatusBadRequest, "a write needs one valid "+VersionHeader+" header")
		return "", "", code, false
	}
	if active, err := s.readActive(); err == nil && active == vh[0] {
		code, _ := plain(w, http.StatusConflict, "version "+active+" is active and immutable; write to another version and activate it")
		return "", "", code, false
	}
	return vh[0], rel, 0, true
}

// openForWrite opens the version for a write of rel and evaluates the
// request's preconditions against the file there; when ok is false the
// answer is written and code is its status.
func (s *Server) openForWrite(w http.ResponseWriter, r *http.Request, version, rel string) (vroot *os.Root, old httpsem.Validators, code int, ok bool) {
	vroot, err := s.rootFS.OpenRoot(version)
	if err != nil {
		code, _ = s.writeFailed(w, r, err)
		return nil, httpsem.Validators{}, code, false
	}
	if old, err = s.existing(vroot, rel); err != nil {
		vroot.Close()
		code, _ = s.writeFailed(w, r, err)
		return nil, httpsem.Validators{}, code, false
	}
	if httpsem.Preconditions(r.Method, r.Header, old) != httpsem.Proceed {
		vroot.Close()
		code, _ = plain(w, http.StatusPreconditionFailed, "precondition failed")
		return nil, httpsem.Validators{}, code, false
	}
	return vroot, old, 0, true
}

// existing returns the validators of a file a write would replace.
func (s *Server) existing(vroot *os.Root, rel string) (httpsem.Validators, error) {
	f, err := vroot.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return httpsem.Validators{}, nil
	}
	if err != nil {
		return httpsem.Validators{}, err
	}
	defer f.Close()
	fd := int(f.Fd())
	st, err := fstat(fd)
	if err != nil {
		return httpsem.Validators{}, err
	}
	if !isRegular(st) {
		return httpsem.Validators{}, errNotFile
	}
	m, err := s.meta.get(fd, st, rel)
	if err != nil {
		return httpsem.Validators{}, err
	}
	return httpsem.Validators{Exists: true, ETag: m.etag, LastModified: m.lastMod}, nil
}

var errNotFile = errors.New("not a regular file")

// servePut stores the body as the file rel of a version: written to a
// hidden temporary file, fsynced and renamed, so a reader of that version
// sees the old file or the new one. Preconditions (If-Match, If-None-Match:
// * for create-only) are honoured.
func (s *Server) servePut(w http.ResponseWriter, r *http.Request) (int, int64) {
	version, rel, code, ok := s.writeTarget(w, r)
	if !ok {
		return code, 0
	}
	if _, partial := r.Header["Content-Range"]; partial {
		// RFC 9110 §14.5: a partial PUT must not be taken for a whole one.
		return plain(w, http.StatusBadRequest, "partial PUT (Content-Range) is not supported")
	}
	if err := s.rootFS.Mkdir(version, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return s.internal(w, r, err)
	}
	vroot, old, code, ok := s.openForWrite(w, r, version, rel)
	if !ok {
		return code, 0
	}
	defer vroot.Close()
	dir := path.Dir(rel)
	if err := vroot.MkdirAll(dir, 0o755); err != nil {
		return s.writeFailed(w, r, err)
	}
	tmp := path.Join(dir, ".upload-"+randHex(8))
	f, err := vroot.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return s.writeFailed(w, r, err)
	}
	body := http.MaxBytesReader(w, r.Body, s.set.Load().maxUpload)
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		vroot.Remove(tmp)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return plain(w, http.StatusRequestEntityTooLarge, "body too large")
		}
		s.log.Warn("upload failed", "path", r.URL.Path, "version", version, "err", err)
		return plain(w, http.StatusBadRequest, "upload failed: reading the body")
	}
	if err := vroot.Rename(tmp, rel); err != nil {
		vroot.Remove(tmp)
		return s.writeFailed(w, r, err)
	}
	if err := syncRootDir(vroot, dir); err != nil {
		return s.internal(w, r, err)
	}
	s.objs.dropVersion(version)
	sum := h.Sum(nil)
	w.Header()["Etag"] = []string{`"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
	w.Header()[VersionHeader] = []string{version}
	s.log.Info("object written", "version", version, "path", rel)
	if old.Exists {
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent, 0
	}
	w.Header().Set("Location", r.URL.Path)
	return plain(w, http.StatusCreated, "created")
}

// serveDelete removes one file of a version.
func (s *Server) serveDelete(w http.ResponseWriter, r *http.Request) (int, int64) {
	version, rel, code, ok := s.writeTarget(w, r)
	if !ok {
		return code, 0
	}
	vroot, old, code, ok := s.openForWrite(w, r, version, rel)
	if !ok {
		return code, 0
	}
	defer vroot.Close()
	if !old.Exists {
		return plain(w, http.StatusNotFound, "not found")
	}
	if err := vroot.Remove(rel); err != nil {
		return s.writeFailed(w, r, err)
	}
	s.objs.dropVersion(version)
	if err := syncRootDir(vroot, path.Dir(rel)); err != nil {
		return s.internal(w, r, err)
	}
	s.log.Info("object deleted", "version", version, "path", rel)
	w.Header()[VersionHeader] = []string{version}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent, 0
}

// writeFailed maps os.Root errors: an escape attempt through a symlink is
// refused like a missing file; a directory in the way is a conflict.
func (s *Server) writeFailed(w http.ResponseWriter, r *http.Request, err error) (int, int64) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return plain(w, http.StatusNotFound, "not found")
	case errors.Is(err, errNotFile):
		return plain(w, http.StatusConflict, "a directory is in the way")
	case isEscape(err):
		s.metrics.rejected.WithLabelValues("escape").Inc()
		s.log.Warn("write path escapes the root", "path", r.URL.Path)
		return plain(w, http.StatusNotFound, "not found")
	}
	return s.internal(w, r, err)
}

// isEscape recognises os.Root's refusal to leave the root.
func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

func syncRootDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
