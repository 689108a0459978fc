package analytics

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// nodeID is the name this node goes by among the Redis queue's consumers:
// Config.NodeID, or else an id made on the first start and kept in the data
// directory. It outlives the process, so a node restarted after a crash
// reads the entries it left pending at once. The local queue's lock on the
// same directory keeps two processes from sharing it.
func nodeID(dataDir string, cfg Config) (string, error) {
	if cfg.NodeID != "" {
		return cfg.NodeID, nil
	}
	path := filepath.Join(dataDir, config.NodeIDFile)
	b, err := os.ReadFile(path)
	if id := strings.TrimSpace(string(b)); err == nil && id != "" {
		return id, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("analytics: read node id: %w", err)
	}

	host, _ := os.Hostname()
	if host == "" {
		host = "node"
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	id := host + "-" + hex.EncodeToString(suffix)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("analytics: write node id: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("analytics: write node id: %w", err)
	}
	return id, nil
}
