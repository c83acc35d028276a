#!/bin/sh
# install.sh [BINARY] — install intercloud as systemd services.
#
# Puts the binary in $PREFIX/bin, the units in /etc/systemd/system (their
# ExecStart pointed at that binary), a config directory /etc/intercloud
# with commented environment files (kept if they exist), the dashboard and
# alerting rules in $PREFIX/share/intercloud, and a system user
# "intercloud". With DESTDIR set (packaging, tests) everything goes under
# DESTDIR and no user is created and systemd is not told.
#
#   sudo make install                      # builds bin/intercloud first
#   DESTDIR=/tmp/root PREFIX=/usr deploy/install.sh bin/intercloud
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-bin/intercloud}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
sysconfdir=${SYSCONFDIR:-/etc}
unitdir=${UNITDIR:-/etc/systemd/system}
user=${INTERCLOUD_USER:-intercloud}

if [ ! -x "$bin" ]; then
	echo "install.sh: $bin is not an executable; build it first (make build)" >&2
	exit 1
fi
if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
	echo "install.sh: run as root, or set DESTDIR to install into a directory" >&2
	exit 1
fi

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$unitdir" "$DESTDIR$PREFIX/share/intercloud/grafana" "$DESTDIR$PREFIX/share/intercloud/prometheus"
install -m 0755 "$bin" "$DESTDIR$PREFIX/bin/intercloud"

for unit in "$here"/systemd/intercloud-*.service; do
	sed "s|/usr/local/bin/intercloud|$PREFIX/bin/intercloud|g; s|/etc/intercloud|$sysconfdir/intercloud|g" "$unit" >"$DESTDIR$unitdir/$(basename "$unit")"
	chmod 0644 "$DESTDIR$unitdir/$(basename "$unit")"
done

install -m 0644 "$here/grafana/intercloud-fleet.json" "$DESTDIR$PREFIX/share/intercloud/grafana/"
install -m 0644 "$here/prometheus/intercloud-alerts.yml" "$here/prometheus/prometheus.yml" "$DESTDIR$PREFIX/share/intercloud/prometheus/"

conf="$DESTDIR$sysconfdir/intercloud"
install -d -m 0755 "$conf"
install -d -m 0755 "$conf/site"
# An operator's settings are never overwritten.
envfile() {
	[ -e "$conf/$1" ] && return 0
	cat >"$conf/$1"
	chmod 0644 "$conf/$1"
}
envfile controller.env <<'END'
# intercloud-controller.service settings. The site and distribution files
# are read from INTERCLOUD_SITE (default /etc/intercloud/site).
#INTERCLOUD_SITE=/etc/intercloud/site
# External store endpoints; empty: an embedded single-member store.
#INTERCLOUD_STORE=http://127.0.0.1:2379
#INTERCLOUD_ARGS=--param shop.active=green
END
envfile node.env <<'END'
# intercloud-node.service settings.
# The node's name in the site (default: the host name).
#INTERCLOUD_NODE=seoul-edge-1
#INTERCLOUD_STORE=http://127.0.0.1:2379
#INTERCLOUD_ARGS=--admin 127.0.0.1:9180
END
envfile store.env <<'END'
# intercloud-store.service settings: one etcd member of the store.
#INTERCLOUD_STORE_NAME=m1
#INTERCLOUD_STORE_LISTEN=127.0.0.1:2379
#INTERCLOUD_STORE_PEER=127.0.0.1:2380
#INTERCLOUD_STORE_CLUSTER=m1=http://10.0.0.1:2380,m2=http://10.0.0.2:2380,m3=http://10.0.0.3:2380
#INTERCLOUD_STORE_ARGS=--existing
END

if [ -n "$DESTDIR" ]; then
	echo "installed into $DESTDIR (no user created, systemd not reloaded)"
	exit 0
fi

if ! getent passwd "$user" >/dev/null; then
	useradd --system --user-group --home-dir /var/lib/intercloud --no-create-home --shell /usr/sbin/nologin "$user"
	echo "created system user $user"
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
cat <<END
installed $PREFIX/bin/intercloud and intercloud-{store,controller,node}.service
next:
  put the site and distribution files in $sysconfdir/intercloud/site
  systemctl enable --now intercloud-controller     # and intercloud-node on every node
  intercloud status
END
