#!/usr/bin/env bash
# Builds the pinned control-plane tools (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, helm, kueue, minio; with AUTOLABEL_REAL_NODE=1 also the
# kubelet of the real test node) into a cache outside the repository,
# keyed by tool version and the pinning module's go.sum, and prints the bin dir.
# A warm rerun only checks that the binaries exist.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=/dev/null
source "$here/versions.env"
cache="${AUTOLABEL_TOOLS_CACHE:-$HOME/.cache/autolabel-operator/tools}"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath"

key() { # name version module-dir -> cache dir
  local sum="none"
  [ -f "$3/go.sum" ] && sum="$(sha256sum "$3/go.sum" | cut -c1-12)"
  echo "$cache/$1-$2-$sum"
}

binary_name() { # go names a command after its last path element, skipping a /vN suffix
  case "$1" in
    go.etcd.io/etcd/server/v3) echo etcd ;;
    *) basename "$1" ;;
  esac
}

build_module() { # name version module-dir ldflags packages...
  local name="$1" version="$2" dir="$3" ldflags="$4"; shift 4
  local out; out="$(key "$name" "$version" "$dir")"
  local missing=0
  for pkg in "$@"; do [ -x "$out/bin/$(binary_name "$pkg")" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    echo "building $name $version into $out" >&2
    mkdir -p "$out/bin.tmp"
    (cd "$dir" && go build -pgo=off -ldflags "-s -w $ldflags" -o "$out/bin.tmp/" "$@")
    [ ! -e "$out/bin.tmp/server" ] || mv "$out/bin.tmp/server" "$out/bin.tmp/etcd"
    rm -rf "$out/bin" && mv "$out/bin.tmp" "$out/bin"
  fi
  for pkg in "$@"; do ln -sf "$out/bin/$(binary_name "$pkg")" "$cache/bin/$(binary_name "$pkg")"; done
}

mkdir -p "$cache/bin"
# One builder at a time (make -j, two checkouts): a second waits, then finds the binaries built.
exec 9>"$cache/.build.lock"
flock 9
minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
date0="2025-01-01T00:00:00Z"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date0 -X $pkg.gitCommit=release-v$K8S_VERSION"
done
build_module k8s "$K8S_VERSION" "$here/k8s" "$k8s_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
# The real test node's kubelet (make test-realnode): the same Kubernetes version in its own module, so the
# control plane's cache key does not change with it.
if [ "${AUTOLABEL_REAL_NODE:-0}" = 1 ]; then
  build_module kubelet "$K8S_VERSION" "$here/kubelet" "$k8s_ldflags" k8s.io/kubernetes/cmd/kubelet
fi
build_module etcd "$ETCD_VERSION" "$here/etcd" "" go.etcd.io/etcd/server/v3
build_module kwok "$KWOK_VERSION" "$here/kwok" "-X sigs.k8s.io/kwok/pkg/consts.Version=v$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
build_module helm "$HELM_VERSION" "$here/helm" "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" helm.sh/helm/v3/cmd/helm
build_module kueue "$KUEUE_VERSION" "$here/kueue" "-X sigs.k8s.io/kueue/pkg/version.GitVersion=v$KUEUE_VERSION" \
  sigs.k8s.io/kueue/cmd/kueue
# Kueue's CRDs and webhook manifests ship in its module; keep them beside the binary (tools/cluster/kueue.py).
kueue_config="$(key kueue "$KUEUE_VERSION" "$here/kueue")/config"
if [ ! -f "$kueue_config/.complete" ]; then
  src="$(cd "$here/kueue" && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)/config/components"
  rm -rf "$kueue_config" && mkdir -p "$kueue_config/crd"
  cp "$src"/crd/bases/*.yaml "$kueue_config/crd/"
  cp "$src/webhook/manifests.yaml" "$kueue_config/webhooks.yaml"
  chmod -R u+w "$kueue_config" && touch "$kueue_config/.complete"
fi
ln -sfn "$kueue_config" "$cache/bin/kueue-config"
# MinIO: the real S3 server of the object-storage tests (tools/services/minio.py). Its main package is the
# module root, so the binary is named after the module path's last element: minio. MinIO stamps its
# version as the commit time, which the pseudo-version carries (v0.0.0-YYYYMMDDhhmmss-commit).
stamp="$(echo "$MINIO_VERSION" | cut -d- -f2)"
minio_time="${stamp:0:4}-${stamp:4:2}-${stamp:6:2}T${stamp:8:2}:${stamp:10:2}:${stamp:12:2}Z"
minio_ldflags="-X github.com/minio/minio/cmd.Version=$minio_time"
minio_ldflags+=" -X github.com/minio/minio/cmd.ReleaseTag=RELEASE.${minio_time//:/-}"
minio_ldflags+=" -X github.com/minio/minio/cmd.CommitID=$(echo "$MINIO_VERSION" | cut -d- -f3)"
build_module minio "$MINIO_VERSION" "$here/minio" "$minio_ldflags" github.com/minio/minio
echo "$cache/bin"
