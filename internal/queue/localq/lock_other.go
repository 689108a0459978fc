//go:build !unix

package localq

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir only creates dir/LOCK on systems without flock: running two
// processes on one queue directory is not detected there.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("localq: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) error {
	return f.Close()
}
