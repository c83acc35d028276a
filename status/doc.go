// Package status holds the runtime state that nodes and the controller
// report through the store: a node's registration and its roles' report,
// the controller's health verdicts, and cache invalidations. Desired state
// (what should run) is package config; this is what runs.
//
// The JSON field names are the store's wire format: nodes and controllers
// of different builds read each other's records, so they must not change.
// See README.md.
package status
