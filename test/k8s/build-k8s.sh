#!/usr/bin/env bash
# Builds the Kubernetes test peers (kube-apiserver, kubelet) from the k8s.io/kubernetes Go module and
# caches them outside the clone: /var/cache/hostdev-k8s/VERSION/ (or $HOSTDEV_K8S_CACHE/VERSION).
# Quiet and instant when they are there. Prints the path of the directory on stdout, and the build
# time on stderr. k8s.io/kubernetes replaces its staging modules with ./staging/..., which its module
# zip lacks, so a consumer module requires it and replaces each staging module with its published
# v0.MINOR.PATCH.
#   build-k8s.sh [VERSION]      (default: the newest v1.34 patch the module proxy lists; 1.34 runs on
#                                cgroup v1 without extra settings)
set -euo pipefail
log() { echo "k8s build: $*" >&2; }
command -v go >/dev/null || { log "no Go toolchain on this machine"; exit 1; }
VERSION=${1:-${HOSTDEV_K8S_VERSION:-}}
if [ -z "$VERSION" ]; then
  VERSION=$(cd /tmp && go list -m -versions k8s.io/kubernetes | tr ' ' '\n' | grep -E '^v1\.34\.[0-9]+$' | sort -V | tail -n 1)
fi
[ -n "$VERSION" ] || { log "cannot list k8s.io/kubernetes versions from the module proxy"; exit 1; }
OUT=${HOSTDEV_K8S_CACHE:-/var/cache/hostdev-k8s}/$VERSION
# The binaries say their version as released ones do (without it they report v0.0.0-master).
minor=${VERSION#v1.}; minor=${minor%%.*}
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS="$LDFLAGS -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
RECIPE="$VERSION CGO_ENABLED=0 -trimpath $LDFLAGS"
built() { [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kubelet" ] && [ "$(cat "$OUT/.recipe" 2>/dev/null)" = "$RECIPE" ]; }
if built; then echo "$OUT"; exit 0; fi
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if built; then echo "$OUT"; exit 0; fi

t0=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hostdev-k8s-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
go mod init hostdev.test/k8s-peers >/dev/null 2>&1
# The staging modules, from k8s.io/kubernetes's own go.mod (its `k8s.io/X => ./staging/...` replaces).
gomod=$(go mod download -json "k8s.io/kubernetes@$VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -f "$gomod" ] || { log "cannot download k8s.io/kubernetes@$VERSION"; exit 1; }
staging=$(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9.-]*\) => \./staging/.*#\1#p' "$gomod" | sort -u)
{
  echo "require k8s.io/kubernetes $VERSION"
  echo "replace ("
  for m in $staging; do echo "  $m => $m v0.${VERSION#v1.}"; done
  echo ")"
} >> go.mod
go_version=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$gomod")
[ -z "$go_version" ] || go mod edit -go="$go_version"
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
log "resolving modules for $VERSION ($(echo "$staging" | wc -l) staging modules replaced)"
go mod tidy >/dev/null 2>&1 || go mod tidy
log "building kube-apiserver and kubelet $VERSION (several minutes on 2 cores)"
CGO_ENABLED=0 go build -trimpath -ldflags="$LDFLAGS" -o "$OUT.tmp/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubelet
mv "$OUT.tmp/kube-apiserver" "$OUT.tmp/kubelet" "$OUT/"
rmdir "$OUT.tmp"
echo "$RECIPE" > "$OUT/.recipe"
log "built $VERSION in $(( $(date +%s) - t0 )) s into $OUT"
echo "$OUT"
