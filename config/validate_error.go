package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem found in the config. File is the file it came from;
// for a snapshot that never was a file (one edited by promote, or read back
// from the store) it names the object instead ("site", "distribution shop")
// and Line/Column are zero.
type Error struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

// Error formats as file:line:column: field: msg, leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found at once, so that a user fixes a file in
// one round instead of one error per run.
type ErrorList []*Error

// Error joins the errors, one per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.As find a single *Error.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// sort orders errors by file and position and drops exact duplicates (the
// same check can fire from two directions, e.g. a link seen from each end).
func (l *ErrorList) sort() {
	slices.SortStableFunc(*l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	*l = slices.CompactFunc(*l, func(a, b *Error) bool { return *a == *b })
}

// err returns the list as an error, or nil when it is empty (a nil
// ErrorList inside an error interface would not compare equal to nil).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	l.sort()
	if len(l) > maxErrors {
		more := len(l) - maxErrors
		l = append(l[:maxErrors:maxErrors], &Error{Msg: fmt.Sprintf("... and %d more errors", more)})
	}
	return &l
}

// maxErrors bounds what one run reports: past a few hundred, the rest is
// the same mistake repeated (or a generated file gone wrong).
const maxErrors = 500
