//go:build !unix

package store

import (
	"errors"
	"os"
)

// lockFile is not available here: the store keeps its leases on disk.
func lockFile(string) (*os.File, error) { return nil, errors.ErrUnsupported }
