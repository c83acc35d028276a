package origin

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/intercloud/intercloud/internal/httpsem"
)

// smallBody: ranges up to this size are read into memory and written in
// one call; larger ones go by sendfile(2), whose setup costs more than
// the copy it saves on small bodies.
const smallBody = 16 << 10

var bodyPool = sync.Pool{New: func() any { b := make([]byte, smallBody); return &b }}

// body is where a response's bytes come from: memory or an open file.
type body interface {
	copyRange(s *Server, w http.ResponseWriter, r *http.Request, br httpsem.ByteRange) int64
}

type memBody []byte

func (b memBody) copyRange(_ *Server, w http.ResponseWriter, _ *http.Request, br httpsem.ByteRange) int64 {
	if br.Start+br.Length > int64(len(b)) {
		return 0
	}
	n, _ := w.Write(b[br.Start : br.Start+br.Length])
	return int64(n)
}

type fileBody int

func (f fileBody) copyRange(s *Server, w http.ResponseWriter, r *http.Request, br httpsem.ByteRange) int64 {
	return s.copyRange(w, r, rawFile(f), br)
}

// copyRange sends one range of f: small ones with one pread and one write,
// larger ones through the ResponseWriter's ReadFrom and a LimitedReader,
// with which net uses sendfile(2).
func (s *Server) copyRange(w http.ResponseWriter, r *http.Request, f rawFile, br httpsem.ByteRange) int64 {
	if br.Length <= smallBody {
		bp := bodyPool.Get().(*[]byte)
		defer bodyPool.Put(bp)
		n, err := preadFull(int(f), (*bp)[:br.Length], br.Start)
		if err != nil {
			s.log.Error("read", "path", r.URL.Path, "err", err)
		}
		m, _ := w.Write((*bp)[:n])
		return int64(m)
	}
	if br.Start != 0 {
		if err := f.seek(br.Start); err != nil {
			s.log.Error("seek", "path", r.URL.Path, "err", err)
			return 0
		}
	}
	// Pushing the header out first (into a corked socket) spares
	// ReadFrom its 512-byte read-and-copy preamble: it goes straight to
	// sendfile.
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	n, err := io.Copy(w, &io.LimitedReader{R: f, N: br.Length})
	if err != nil {
		s.log.Debug("send body", "path", r.URL.Path, "err", err)
	}
	return n
}

func contentRange(br httpsem.ByteRange, size string) string {
	return "bytes " + strconv.FormatInt(br.Start, 10) + "-" + strconv.FormatInt(br.End(), 10) + "/" + size
}

// writePartial answers 206: one part with Content-Range, or several as
// multipart/byteranges (RFC 9110 §14.6) with an exact Content-Length.
func (s *Server) writePartial(w http.ResponseWriter, r *http.Request, f body, m *fileMeta, rs []httpsem.ByteRange) (int, int64) {
	h := w.Header()
	if len(rs) == 1 {
		h["Content-Type"] = m.ctypeH
		h["Content-Range"] = []string{contentRange(rs[0], m.lengthH[0])}
		h["Content-Length"] = []string{strconv.FormatInt(rs[0].Length, 10)}
		w.WriteHeader(http.StatusPartialContent)
		return http.StatusPartialContent, f.copyRange(s, w, r, rs[0])
	}
	boundary := newBoundary()
	parts := multipartHeads(boundary, m.ctype, m.lengthH[0], rs)
	tail := "\r\n--" + boundary + "--\r\n"
	total := int64(len(tail))
	for i, p := range parts {
		total += int64(len(p)) + rs[i].Length
	}
	h["Content-Type"] = []string{"multipart/byteranges; boundary=" + boundary}
	h["Content-Length"] = []string{strconv.FormatInt(total, 10)}
	w.WriteHeader(http.StatusPartialContent)
	var sent int64
	for i, p := range parts {
		n, err := io.WriteString(w, p)
		sent += int64(n)
		if err != nil {
			return http.StatusPartialContent, sent
		}
		c := f.copyRange(s, w, r, rs[i])
		sent += c
		if c != rs[i].Length {
			// The file shrank under us: stop, the client sees a short body.
			return http.StatusPartialContent, sent
		}
	}
	n, _ := io.WriteString(w, tail)
	return http.StatusPartialContent, sent + int64(n)
}

// multipartHeads returns the delimiter and part header block before each
// part's bytes. The first delimiter has no leading CRLF (RFC 2046 §5.1.1:
// the CRLF belongs to the delimiter, and there is no preamble).
func multipartHeads(boundary, ctype, size string, rs []httpsem.ByteRange) []string {
	out := make([]string, len(rs))
	for i, br := range rs {
		lead := "\r\n"
		if i == 0 {
			lead = ""
		}
		out[i] = lead + "--" + boundary + "\r\n" +
			"Content-Type: " + ctype + "\r\n" +
			"Content-Range: " + contentRange(br, size) + "\r\n\r\n"
	}
	return out
}

// newBoundary is random, so content cannot be crafted to contain it.
func newBoundary() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
