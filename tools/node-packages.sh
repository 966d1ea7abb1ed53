#!/usr/bin/env bash
# Installs the Debian packages the real test node needs (tools/cluster/realnode.py) when missing:
# containerd and runc (containers), the CNI plugins (the pod bridge), buildah (images built
# locally, no registry here), mmdebstrap (the image's Python base from Debian packages), static
# busybox (the node's own test and sandbox image), iproute2 and iptables (the pod network).
set -euo pipefail
declare -A files=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [buildah]=/usr/bin/buildah
  [mmdebstrap]=/usr/bin/mmdebstrap
  [busybox-static]=/bin/busybox
  [iproute2]=/usr/sbin/ip
  [iptables]=/usr/sbin/iptables
)
need=()
for package in "${!files[@]}"; do [ -e "${files[$package]}" ] || need+=("$package"); done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  # --no-install-recommends: containerd must not pull in docker's or podman's daemons.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
