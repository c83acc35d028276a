// Package deploy holds what runs intercloud on hosts and watches it: the
// systemd units, install.sh, the Grafana dashboard and the Prometheus
// alerting rules (see README.md). It has no Go code of its own; its tests
// run the units' command lines, the installer, promtool and the daemons'
// real /metrics against these files.
package deploy
