#!/usr/bin/env bash
# Starts a rootful Podman service that serves the Docker Engine API, for the node agent's
# docker driver (tests and local development). Idempotent: a service already answering on
# the socket is reused. Config, image store, socket and logs live in one folder and /etc is
# left untouched; Podman 4.3 itself still keeps its image blob-info cache in
# /var/lib/containers/cache and netavark its runtime state in /run/containers/networks.
# Run podman commands against this service with the same environment:
#   CONTAINERS_CONF=$DIR/containers.conf CONTAINERS_STORAGE_CONF=$DIR/storage.conf podman ps
#
#   eval "$(scripts/podman/start.sh)"      # exports DOCKER_HOST=unix://<dir>/podman.sock
#
# Folder: $ALVEARY_PODMAN_DIR, default /tmp/alveary-podman. Needs (Debian): podman runc busybox-static.
# Also imports localhost/busybox:1 (built from busybox-static, no registry needed) if missing.
set -euo pipefail

DIR=${ALVEARY_PODMAN_DIR:-/tmp/alveary-podman}
SOCK=$DIR/podman.sock
IMAGE=localhost/busybox:1
log() { echo "podman-start: $*" >&2; }

for bin in podman runc; do
  command -v "$bin" >/dev/null || { log "$bin is not installed (apt-get install -y podman runc busybox-static)"; exit 1; }
done

mkdir -p "$DIR/storage" "$DIR/run" "$DIR/tmp" "$DIR/networks"
chmod 700 "$DIR"

# Storage: overlay, image store and runtime state in the folder.
cat >"$DIR/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$DIR/run"
CONF

# runc (crun fails on this kernel/cgroup v1 mix), cgroupfs (no systemd), file events (no journald),
# and ulimits within the hard nofile limit of the machine (the default 1048576 cannot be set).
cat >"$DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[network]
network_config_dir = "$DIR/networks"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
tmp_dir = "$DIR/tmp"
CONF

# Registries: short names resolve on Docker Hub as with Docker. alveary.invalid is blocked so tests
# of a missing image fail at once, without waiting on DNS on an air-gapped machine.
cat >"$DIR/registries.conf" <<CONF
unqualified-search-registries = ["docker.io"]
short-name-mode = "permissive"

[[registry]]
location = "alveary.invalid"
blocked = true
CONF

export CONTAINERS_CONF=$DIR/containers.conf CONTAINERS_STORAGE_CONF=$DIR/storage.conf CONTAINERS_REGISTRIES_CONF=$DIR/registries.conf

ping_socket() {
  [[ -S $SOCK ]] || return 1
  if command -v curl >/dev/null; then
    [[ $(curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping 2>/dev/null) == OK ]]
  else
    node -e '
      const req = require("http").get({ socketPath: process.argv[1], path: "/_ping", timeout: 2000 }, (res) => {
        let b = ""; res.on("data", (d) => (b += d)); res.on("end", () => process.exit(b === "OK" ? 0 : 1))
      })
      req.on("error", () => process.exit(1)); req.on("timeout", () => process.exit(1))' "$SOCK"
  fi
}

# conmon, started by the service for every container, needs the service's working directory:
# once that folder is deleted (a service started from a clone since removed) the service still
# answers pings but every container start fails with "write child: broken pipe".
cwd_gone() {
  [[ -f $DIR/service.pid ]] && [[ $(readlink "/proc/$(cat "$DIR/service.pid")/cwd" 2>/dev/null) == *" (deleted)" ]]
}

if ping_socket && ! cwd_gone; then
  log "service already answering on $SOCK"
else
  if [[ -f $DIR/service.pid ]] && kill -0 "$(cat "$DIR/service.pid")" 2>/dev/null; then
    log "a service (pid $(cat "$DIR/service.pid")) does not answer or lost its working directory; restarting it"
    kill "$(cat "$DIR/service.pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$(cat "$DIR/service.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$SOCK"
  # Rootful port publishing forwards through the host's network stack.
  if [[ $(cat /proc/sys/net/ipv4/ip_forward 2>/dev/null || echo 1) != 1 ]]; then
    sysctl -q -w net.ipv4.ip_forward=1 2>/dev/null || log "could not enable net.ipv4.ip_forward; published ports may not work"
  fi
  # setsid: the service must outlive this script and the shell that ran it; it runs in its own
  # folder, which lives as long as it does (not in the caller's, which may be deleted).
  (cd "$DIR" && exec setsid podman system service --time=0 "unix://$SOCK" </dev/null >>"$DIR/service.log" 2>&1) &
  echo $! >"$DIR/service.pid"
  for _ in $(seq 1 100); do
    ping_socket && break
    if ! kill -0 "$(cat "$DIR/service.pid")" 2>/dev/null; then
      log "podman system service exited; its log ($DIR/service.log):"
      tail -20 "$DIR/service.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  ping_socket || { log "no answer on $SOCK after 20s; see $DIR/service.log"; exit 1; }
  log "service started (pid $(cat "$DIR/service.pid")) on $SOCK"
fi

if ! podman image exists "$IMAGE"; then
  # The rootfs has no libc: only a static busybox runs in it (ldd fails on static binaries).
  BUSYBOX=/bin/busybox
  [[ -x $BUSYBOX ]] || { log "busybox is not installed (apt-get install -y busybox-static)"; exit 1; }
  if ldd "$BUSYBOX" >/dev/null 2>&1; then log "$BUSYBOX is linked dynamically (apt-get install -y busybox-static)"; exit 1; fi
  ROOTFS=$(mktemp -d "$DIR/tmp/rootfs.XXXXXX")
  trap 'rm -rf "$ROOTFS" "$ROOTFS.tar"' EXIT
  mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,www}
  cp "$BUSYBOX" "$ROOTFS/bin/busybox"
  for applet in $("$ROOTFS/bin/busybox" --list); do
    [[ -e $ROOTFS/bin/$applet ]] || ln -s busybox "$ROOTFS/bin/$applet"
  done
  chmod 1777 "$ROOTFS/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
  echo 'root:x:0:' >"$ROOTFS/etc/group"
  echo 'alveary busybox' >"$ROOTFS/www/index.html"
  tar -C "$ROOTFS" -cf "$ROOTFS.tar" .
  podman import --quiet --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' "$ROOTFS.tar" "$IMAGE" >/dev/null
  log "imported $IMAGE"
fi

echo "DOCKER_HOST=unix://$SOCK"
