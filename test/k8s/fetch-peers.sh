#!/usr/bin/env bash
# Fetches the Kubernetes test peers that Debian ships: etcd and containerd (trixie's, unpacked with
# dpkg-deb -x, never installed) and runc (bookworm's, installed: trixie's needs a newer glibc). A
# private APT_CONFIG keeps the system's apt state as it is. Cached in /var/cache/hostdev-k8s/debs
# ($HOSTDEV_K8S_CACHE/debs); prints that directory. Quiet and instant when done before.
set -euo pipefail
log() { echo "k8s peers: $*" >&2; }
CACHE=${HOSTDEV_K8S_CACHE:-/var/cache/hostdev-k8s}
ROOT=$CACHE/debs
if [ -x "$ROOT/usr/bin/etcd" ] && [ -x "$ROOT/usr/bin/containerd" ] && command -v runc >/dev/null; then echo "$ROOT"; exit 0; fi
mkdir -p "$CACHE"
exec 9>"$CACHE/.debs.lock"
flock 9
export DEBIAN_FRONTEND=noninteractive
command -v runc >/dev/null || { apt-get update -qq; apt-get install -y -qq --no-install-recommends runc >/dev/null; }
APT=$CACHE/apt
mkdir -p "$APT"/{lists/partial,cache/archives/partial,etc/preferences.d}
mirror=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$2 !~ /security/ {print $2; exit}')
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' "$mirror" > "$APT/sources.list"
cat > "$APT/apt.conf" <<CONF
Dir::Etc::SourceList "$APT/sources.list";
Dir::Etc::SourceParts "/nonexistent";
Dir::Etc::Preferences "/nonexistent";
Dir::Etc::PreferencesParts "$APT/etc/preferences.d";
Dir::State::Lists "$APT/lists";
Dir::State::status "/dev/null";
Dir::Cache "$APT/cache";
APT::Sandbox::User "root";
CONF
export APT_CONFIG=$APT/apt.conf
log "downloading etcd-server and containerd from trixie"
apt-get update -qq
rm -rf "$ROOT.tmp"; mkdir -p "$ROOT.tmp"
(cd "$APT/cache/archives" && apt-get download -qq etcd-server containerd)
for deb in "$APT"/cache/archives/etcd-server_*.deb "$APT"/cache/archives/containerd_*.deb; do dpkg-deb -x "$deb" "$ROOT.tmp"; done
rm -rf "$ROOT"; mv "$ROOT.tmp" "$ROOT"
log "etcd $("$ROOT/usr/bin/etcd" --version | head -n 1), containerd $("$ROOT/usr/bin/containerd" --version | awk '{print $3}')"
echo "$ROOT"
