package edge

// matchPath reports whether path matches a CloudFront path pattern: "*"
// matches any run of characters (slashes included), "?" exactly one, and
// everything else itself, case-sensitively. It runs in O(len(p)*len(s))
// at worst, with no recursion, so hostile paths cannot blow the stack.
func matchPath(pattern, path string) bool {
	p, s := 0, 0
	starP, starS := -1, 0
	for s < len(path) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == path[s]):
			p++
			s++
		case p < len(pattern) && pattern[p] == '*':
			starP, starS = p, s
			p++
		case starP >= 0:
			p = starP + 1
			starS++
			s = starS
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// normalizePattern makes "images/*" mean "/images/*" as CloudFront does;
// "*" stays the catch-all.
func normalizePattern(p string) string {
	if p == "" || p == "*" || p[0] == '/' || p[0] == '*' {
		if p == "" {
			return "*"
		}
		return p
	}
	return "/" + p
}
