#!/bin/sh
# Alveary's per-instance watchdog (self-fencing). It kills its instance when the node's lease
# lapses (the agent stopped renewing it: it crashed, or lost the control plane) or when a
# shared volume the instance mounts was attached elsewhere at a higher epoch. It runs apart
# from the agent, so the agent's death does not stop it, and exits once its instance is gone.
#
# usage: watchdog.sh LEASE_FILE WATCH_PID REASON_FILE [pgid N | pid N | cgroup PROCS_FILE | fence EPOCH_FILE EPOCH]...
# LEASE_FILE holds "valid until" in centiseconds of /proc/uptime; REASON_FILE gets why it killed.
lease=$1 watch=$2 reason_file=$3
shift 3
targets="$*"

now_cs() {
  read -r up _ < /proc/uptime
  echo "${up%.*}${up#*.}"
}

kill_all() {
  echo "$1" > "$reason_file" 2>/dev/null
  set -- $targets
  while [ $# -gt 0 ]; do
    case $1 in
      pgid) kill -9 "-$2" 2>/dev/null; shift 2 ;;
      pid) kill -9 "$2" 2>/dev/null; shift 2 ;;
      cgroup) while read -r p; do kill -9 "$p" 2>/dev/null; done < "$2"; shift 2 ;;
      fence) shift 3 ;;
      *) shift ;;
    esac
  done
  exit 0
}

while kill -0 "$watch" 2>/dev/null; do
  until=0
  read -r until < "$lease" 2>/dev/null
  [ "$(now_cs)" -ge "${until:-0}" ] && kill_all "the node's lease lapsed (no contact with the control plane)"
  set -- $targets
  while [ $# -gt 0 ]; do
    if [ "$1" = fence ]; then
      epoch=0
      read -r epoch < "$2" 2>/dev/null
      [ "${epoch:-0}" -gt "$3" ] && kill_all "its volume was attached elsewhere (epoch $epoch > $3)"
      shift 3
    else
      shift 2
    fi
  done
  sleep 0.5
done
