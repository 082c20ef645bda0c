#!/usr/bin/env bash
# The real-cluster suite (`npm run test:k8s`): etcd and containerd from Debian, kube-apiserver and the
# kubelet built from the Kubernetes Go modules (cached in /var/cache/hostdev-k8s, built only when
# missing), the test images made locally, then test/k8s-cluster on loopback. Needs root: the kubelet
# and containerd run as they do on a node.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "test:k8s runs a kubelet and containerd, which need root; run it as root" >&2
  exit 1
fi
bash scripts/ensure-built.sh
start=$(date +%s)
debs=$(bash test/k8s/fetch-peers.sh)
k8s=$(bash test/k8s/build-k8s.sh)
images=$(bash test/k8s/build-images.sh)
echo "k8s peers ready in $(( $(date +%s) - start )) s: $("$k8s/kubelet" --version), $("$debs/usr/bin/etcd" --version | head -n 1), containerd $("$debs/usr/bin/containerd" --version | awk '{print $3}')"
if [ ! -t 1 ]; then export NO_COLOR=1; unset FORCE_COLOR; fi
HOSTDEV_K8S_DEBS=$debs HOSTDEV_K8S_BIN=$k8s HOSTDEV_K8S_IMAGES=$images npx vitest run -c vitest.k8s.config.ts "$@"
