//go:build tools

// Package tools records the kubelet this module builds, so that `go mod tidy`
// keeps its dependencies.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kubelet"
)
