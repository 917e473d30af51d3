#!/usr/bin/env bash
# Runs every Concord test: formatting, vet, the library's tests under the race
# detector (including the root-only network-namespace tests), and the interop
# module. It installs what the tests need (iproute2, iptables, redis-server,
# npm) with apt-get when it runs as root and they are missing; the interop
# module's js-libp2p tests then install Node 22 and js-libp2p from
# interop/js's lock file with npm ci (into interop/js/node_modules). Under CI=true the namespace tests are mandatory:
# they fail instead of skipping when they cannot run.
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '== %s\n' "$*"; }

need_pkgs=()
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server) # concord interop's tests
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)                   # bootstraps interop/js's npm ci
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${need_pkgs[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    log "missing ${need_pkgs[*]} and not root: namespace tests will skip (they fail under CI=true)"
  fi
fi
# The kernel modules behind iptables may not be loaded yet; loading them is
# harmless when they are built in.
if [ "$(id -u)" = 0 ] && command -v modprobe >/dev/null 2>&1; then
  modprobe -q nfnetlink_queue 2>/dev/null || true
fi

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  printf 'not gofmt-formatted:\n%s\n' "$unformatted"
  exit 1
fi

log "go vet ./..."
go vet ./...

log "go test -race ./..."
go test -race -count=1 -timeout 30m ./...

if [ -f interop/go.mod ]; then
  log "interop module: go vet, go test -race"
  (cd interop && go vet ./... && go test -race -count=1 -timeout 30m ./...)
fi

if [ -f libp2p/go.mod ]; then
  log "libp2p module: go vet, go test -race"
  (cd libp2p && go vet ./... && go test -race -count=1 -timeout 20m ./...)
fi

log "all tests passed"
