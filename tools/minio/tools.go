//go:build tools

// Package tools records the MinIO server this module builds (the S3 server of the object-storage tests).
package tools

import _ "github.com/minio/minio"
