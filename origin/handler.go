package origin

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/intercloud/intercloud/internal/httpsem"
)

// VersionHeader names the version a response came from; on a request, it
// names the version a PUT or DELETE writes to, or (with the token) a GET
// reads from before it is activated.
const VersionHeader = "Intercloud-Version"

// Handler serves content, /healthz and /readyz (and /metrics when there is
// no separate admin address).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz":
			s.serveHealth(w, r)
			return
		case "/readyz":
			s.serveReady(w, r)
			return
		case "/metrics":
			if s.cfg.Admin == "" && s.gather != nil {
				s.serveMetrics(w, r)
				return
			}
		}
		s.serveContent(w, r)
	})
}

// AdminHandler serves /metrics, /healthz and /readyz only.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.serveHealth)
	mux.HandleFunc("/readyz", s.serveReady)
	if s.gather != nil {
		mux.HandleFunc("/metrics", s.serveMetrics)
	}
	return mux
}

func (s *Server) serveContent(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := s.metrics.begin(r.Method)
	code, sent := s.route(w, r, start)
	rec.done(code, sent, time.Since(start))
}

// route dispatches by method and returns the status and body bytes sent.
func (s *Server) route(w http.ResponseWriter, r *http.Request, now time.Time) (int, int64) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.serveGet(w, r, now)
	case http.MethodPut:
		return s.servePut(w, r)
	case http.MethodDelete:
		return s.serveDelete(w, r)
	case http.MethodOptions:
		w.Header()["Allow"] = s.allow()
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent, 0
	default:
		w.Header()["Allow"] = s.allow()
		return plain(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

var (
	allowRead  = []string{"GET, HEAD, OPTIONS"}
	allowWrite = []string{"GET, HEAD, OPTIONS, PUT, DELETE"}
)

func (s *Server) allow() []string {
	if s.set.Load().token == nil {
		return allowRead
	}
	return allowWrite
}

// activeVersion is the version content requests read (see active.go).
func (s *Server) activeVersion() (string, error) {
	return s.active.get()
}

// readActive reads the current pointer from the root.
func (s *Server) readActive() (string, error) {
	var buf [256]byte
	for {
		n, err := unix.Readlinkat(s.rootFd, CurrentLink, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENOENT {
			return "", ErrNoVersion
		}
		if err != nil {
			return "", err
		}
		v := string(buf[:n])
		if err := ValidVersion(v); err != nil {
			return "", err
		}
		return v, nil
	}
}

// requestVersion picks the version a request reads: the active one, or
// the one named in VersionHeader when the request carries the token.
func (s *Server) requestVersion(w http.ResponseWriter, r *http.Request) (string, int, bool) {
	if vh, ok := r.Header[VersionHeader]; ok {
		if code, ok := s.authorize(w, r); !ok {
			return "", code, false
		}
		if len(vh) != 1 || ValidVersion(vh[0]) != nil {
			code, _ := plain(w, http.StatusBadRequest, "invalid "+VersionHeader)
			return "", code, false
		}
		return vh[0], 0, true
	}
	v, err := s.activeVersion()
	if err != nil {
		s.log.Warn("no active version", "err", err)
		code, _ := plain(w, http.StatusServiceUnavailable, "no active version")
		return "", code, false
	}
	return v, 0, true
}

func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, now time.Time) (int, int64) {
	rel, err := cleanPath(r.URL.Path)
	if err != nil {
		return s.rejectPath(w, err)
	}
	version, code, ok := s.requestVersion(w, r)
	if !ok {
		return code, 0
	}
	key := objKey{version, r.URL.Path}
	var stale *cachedObject
	if s.objs.enabled() {
		o, fresh := s.objs.get(key, now)
		if fresh {
			return s.writeObject(w, r, memBody(o.body), o.meta, version, now)
		}
		stale = o
	}

	vfd, err := openVersion(s.rootFd, version)
	if err != nil {
		return s.openFailed(w, r, err)
	}
	name := rel
	if name == "" {
		name = "."
	}
	fd, err := openBeneath(vfd, name)
	unix.Close(vfd)
	if err != nil {
		return s.openFailed(w, r, err)
	}
	// A closure: fd changes below when a directory leads to its index.
	defer func() { unix.Close(fd) }()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return s.internal(w, r, err)
	}
	fname := rel
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		// A directory serves its index.html; the URL must end in "/"
		// so that relative links in the page resolve below it.
		if !strings.HasSuffix(r.URL.Path, "/") {
			u := r.URL.Path + "/"
			if r.URL.RawQuery != "" {
				u += "?" + r.URL.RawQuery
			}
			w.Header()["Location"] = []string{u}
			return plain(w, http.StatusMovedPermanently, "moved")
		}
		ifd, err := openBeneath(fd, "index.html")
		if err != nil {
			return s.openFailed(w, r, err)
		}
		unix.Close(fd)
		fd = ifd
		if err := unix.Fstat(fd, &st); err != nil {
			return s.internal(w, r, err)
		}
		fname = "index.html"
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return plain(w, http.StatusNotFound, "not found")
	}
	m, err := s.meta.get(fd, &st, fname)
	if err != nil {
		return s.internal(w, r, err)
	}
	if s.objs.enabled() && m.size <= maxCachedObject {
		if stale != nil && stale.meta == m {
			s.objs.renew(stale, now)
			return s.writeObject(w, r, memBody(stale.body), m, version, now)
		}
		body := make([]byte, m.size)
		if n, err := preadFull(fd, body, 0); err == nil && int64(n) == m.size {
			s.objs.put(key, m, body, now)
			return s.writeObject(w, r, memBody(body), m, version, now)
		}
	}
	return s.writeObject(w, r, fileBody(fd), m, version, now)
}

// writeObject answers GET or HEAD of one file per Decide.
func (s *Server) writeObject(w http.ResponseWriter, r *http.Request, f body, m *fileMeta, version string, now time.Time) (int, int64) {
	h := w.Header()
	lm, lmH := m.lastMod, m.lastModH
	if lm.Unix() > now.Unix() {
		// Last-Modified must not be later than Date (RFC 9110 §8.8.2.1).
		lm = now.UTC().Truncate(time.Second)
		lmH = []string{lm.Format(http.TimeFormat)}
	}
	v := httpsem.Validators{Exists: true, ETag: m.etag, LastModified: lm}
	d := httpsem.Decide(r.Method, r.Header, v, m.size)

	h["Etag"] = m.etagH
	if cc := s.set.Load().rules.match(r.URL.Path); cc != nil {
		h["Cache-Control"] = cc
	}
	h[VersionHeader] = []string{version}
	switch d.Status {
	case http.StatusNotModified:
		w.WriteHeader(http.StatusNotModified)
		return d.Status, 0
	case http.StatusPreconditionFailed:
		delete(h, "Etag")
		return plain(w, d.Status, "precondition failed")
	case http.StatusRequestedRangeNotSatisfiable:
		h["Content-Range"] = []string{"bytes */" + m.lengthH[0]}
		return plain(w, d.Status, "range not satisfiable")
	}
	h["Last-Modified"] = lmH
	h["Accept-Ranges"] = acceptRanges
	if d.Status == http.StatusOK {
		h["Content-Type"] = m.ctypeH
		h["Content-Length"] = m.lengthH
		if r.Method == http.MethodHead || m.size == 0 {
			w.WriteHeader(http.StatusOK)
			return http.StatusOK, 0
		}
		// From memory the body leaves in at most two writes, which
		// measured cheaper than the two setsockopt calls of a cork.
		if _, isFile := f.(fileBody); isFile && m.size > corkThreshold {
			if uncork := cork(w, r); uncork != nil {
				defer uncork()
			}
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK, f.copyRange(s, w, r, httpsem.ByteRange{Start: 0, Length: m.size})
	}
	if len(d.Ranges) > 1 || d.Ranges[0].Length > corkThreshold {
		if uncork := cork(w, r); uncork != nil {
			defer uncork()
		}
	}
	return s.writePartial(w, r, f, m, d.Ranges)
}

var acceptRanges = []string{"bytes"}

func (s *Server) rejectPath(w http.ResponseWriter, err error) (int, int64) {
	if errors.Is(err, errHidden) {
		s.metrics.rejected.WithLabelValues("hidden").Inc()
		return plain(w, http.StatusNotFound, "not found")
	}
	s.metrics.rejected.WithLabelValues("traversal").Inc()
	return plain(w, http.StatusBadRequest, "invalid path")
}

func (s *Server) openFailed(w http.ResponseWriter, r *http.Request, err error) (int, int64) {
	err = classifyOpen(err)
	switch {
	case errors.Is(err, errEscape):
		s.metrics.rejected.WithLabelValues("escape").Inc()
		s.log.Warn("path escapes the root", "path", r.URL.Path)
		return plain(w, http.StatusNotFound, "not found")
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ENAMETOOLONG):
		return plain(w, http.StatusNotFound, "not found")
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return plain(w, http.StatusForbidden, "forbidden")
	}
	return s.internal(w, r, err)
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) (int, int64) {
	s.log.Error("origin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	return plain(w, http.StatusInternalServerError, "internal error")
}

var textPlain = []string{"text/plain; charset=utf-8"}

// plain writes a short text body for errors and redirects.
func plain(w http.ResponseWriter, code int, msg string) (int, int64) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(code)
	n, _ := w.Write([]byte(msg + "\n"))
	return code, int64(n)
}

type health struct {
	Status  string `json:"status"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
}

// serveHealth reports liveness and the active version; an origin with no
// active version has nothing to serve and says so with 503.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	v, err := s.readActive()
	h := health{Status: "ok", Version: v}
	code := http.StatusOK
	if err != nil {
		h = health{Status: "unavailable", Error: err.Error()}
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(h)
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := s.Ready(); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
}
