package origin

import (
	"errors"
	"strings"
)

var (
	// errBadPath: "." or ".." segments, NUL or backslash. Answered 400.
	errBadPath = errors.New("invalid path")
	// errHidden: a segment starting with a dot. Answered 404, as if the
	// file were not there.
	errHidden = errors.New("hidden path")
)

// cleanPath turns a decoded URL path into a path relative to a version
// directory ("" for the version's top). It rejects rather than resolves
// dot segments: a client that sends them is probing, and resolving them
// would make two URLs name one object. Empty segments ("//") are dropped.
func cleanPath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", errBadPath
	}
	if strings.IndexByte(p, 0) >= 0 || strings.IndexByte(p, '\\') >= 0 {
		return "", errBadPath
	}
	// Fast path: most paths are already clean.
	clean := true
	for i := 1; i < len(p); i++ {
		if p[i] == '.' && p[i-1] == '/' || p[i] == '/' && p[i-1] == '/' {
			clean = false
			break
		}
	}
	if clean {
		return strings.TrimSuffix(p[1:], "/"), nil
	}
	var b strings.Builder
	for seg := range strings.SplitSeq(p[1:], "/") {
		switch {
		case seg == "":
			continue
		case seg == "." || seg == "..":
			return "", errBadPath
		case seg[0] == '.':
			return "", errHidden
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(seg)
	}
	return b.String(), nil
}
