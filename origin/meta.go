package origin

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/sys/unix"
)

// fileKey names a file by inode: a new version is new inodes, and a file
// replaced by rename is a new inode, so neither can hit a stale entry.
type fileKey struct{ dev, ino uint64 }

// fileMeta is what is computed once per file content: the strong ETag (a
// content hash) and the Content-Type, plus header values ready to assign.
type fileMeta struct {
	size             int64
	mtimeNs, ctimeNs int64
	etag             string
	ctype            string

	// Shared header value slices; net/http only reads them.
	etagH, ctypeH, lengthH, lastModH []string
	lastMod                          time.Time // second resolution
}

// fresh reports whether st still describes the file the entry was built
// from; an in-place write changes mtime and ctime.
func (m *fileMeta) fresh(st *unix.Stat_t) bool {
	return m.size == st.Size && m.mtimeNs == st.Mtim.Nano() && m.ctimeNs == st.Ctim.Nano()
}

// metaCache keeps fileMeta by inode. It is bounded: when full it starts
// over, which costs one hash per file again and never serves stale data.
type metaCache struct {
	m       sync.Map // fileKey → *fileMeta
	n       atomic.Int64
	max     int64
	flight  singleflight.Group
	onHash  func(bytes int64) // metrics hook
	hashBuf sync.Pool
}

func newMetaCache(max int64, onHash func(int64)) *metaCache {
	c := &metaCache{max: max, onHash: onHash}
	c.hashBuf.New = func() any { b := make([]byte, 256<<10); return &b }
	return c
}

func (c *metaCache) len() int64 { return c.n.Load() }

// get returns the metadata of the open file fd whose fstat is st; name is
// used for the Content-Type by extension.
func (c *metaCache) get(fd int, st *unix.Stat_t, name string) (*fileMeta, error) {
	k := fileKey{uint64(st.Dev), st.Ino}
	if v, ok := c.m.Load(k); ok {
		if m := v.(*fileMeta); m.fresh(st) {
			return m, nil
		}
	}
	// Concurrent first requests for one file hash it once.
	fk := fmt.Sprintf("%d:%d:%d:%d:%d", k.dev, k.ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano())
	v, err, _ := c.flight.Do(fk, func() (any, error) {
		return c.compute(fd, st, name)
	})
	if err != nil {
		return nil, err
	}
	m := v.(*fileMeta)
	if m.fresh(st) {
		if _, loaded := c.m.Swap(k, m); !loaded {
			if c.n.Add(1) > c.max {
				c.m.Clear()
				c.n.Store(0)
			}
		}
	}
	return m, nil
}

// compute hashes the file through fd (pread: the file offset stays put).
// If the file changes while it is read, it tries again: an ETag must name
// exactly the bytes it is sent with.
func (c *metaCache) compute(fd int, st *unix.Stat_t, name string) (*fileMeta, error) {
	bp := c.hashBuf.Get().(*[]byte)
	defer c.hashBuf.Put(bp)
	buf := *bp
	for attempt := 0; ; attempt++ {
		h := sha256.New()
		var head []byte
		var off int64
		for {
			n, err := preadFull(fd, buf, off)
			if err != nil {
				return nil, fmt.Errorf("hash %s: %w", name, err)
			}
			if off == 0 {
				head = append([]byte(nil), buf[:min(n, 512)]...)
			}
			h.Write(buf[:n])
			off += int64(n)
			if n < len(buf) {
				break
			}
		}
		if c.onHash != nil {
			c.onHash(off)
		}
		var after unix.Stat_t
		if err := unix.Fstat(fd, &after); err != nil {
			return nil, fmt.Errorf("hash %s: %w", name, err)
		}
		same := after.Size == st.Size && after.Size == off &&
			after.Mtim.Nano() == st.Mtim.Nano() && after.Ctim.Nano() == st.Ctim.Nano()
		if !same {
			if attempt == 2 {
				return nil, fmt.Errorf("hash %s: file keeps changing while read", name)
			}
			*st = after
			continue
		}
		sum := h.Sum(nil)
		etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
		ctype := mime.TypeByExtension(path.Ext(name))
		if ctype == "" {
			ctype = http.DetectContentType(head)
		}
		lm := time.Unix(st.Mtim.Sec, 0).UTC()
		return &fileMeta{
			size: st.Size, mtimeNs: st.Mtim.Nano(), ctimeNs: st.Ctim.Nano(),
			etag: etag, ctype: ctype,
			etagH: []string{etag}, ctypeH: []string{ctype},
			lengthH:  []string{strconv.FormatInt(st.Size, 10)},
			lastMod:  lm,
			lastModH: []string{lm.Format(http.TimeFormat)},
		}, nil
	}
}
