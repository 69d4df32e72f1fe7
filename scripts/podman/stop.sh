#!/usr/bin/env bash
# Stops the Podman service started by start.sh. Containers it runs are stopped and removed;
# with --purge the whole folder (image store included) is deleted too.
set -euo pipefail

DIR=${ALVEARY_PODMAN_DIR:-/tmp/alveary-podman}
log() { echo "podman-stop: $*" >&2; }
[[ -d $DIR ]] || { log "nothing to stop ($DIR does not exist)"; exit 0; }
export CONTAINERS_CONF=$DIR/containers.conf CONTAINERS_STORAGE_CONF=$DIR/storage.conf CONTAINERS_REGISTRIES_CONF=$DIR/registries.conf

if command -v podman >/dev/null && [[ -f $DIR/storage.conf ]]; then
  podman rm --force --all --time 2 >/dev/null 2>&1 || true
fi
if [[ -f $DIR/service.pid ]]; then
  pid=$(cat "$DIR/service.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "service (pid $pid) stopped"
  fi
  rm -f "$DIR/service.pid"
fi
rm -f "$DIR/podman.sock"

if [[ ${1:-} == --purge ]]; then
  # Overlay mounts of the store must go before the files can.
  if command -v podman >/dev/null && [[ -f $DIR/storage.conf ]]; then podman system reset --force >/dev/null 2>&1 || true; fi
  rm -rf "$DIR"
  log "removed $DIR"
fi
