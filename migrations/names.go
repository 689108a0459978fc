package migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/internal/config"
)

// The collections' ids are fixed, so every part of Pocketlytics (and the
// dashboard) finds them by id whatever names the host app gave them.
const (
	SitesCollectionId   = "pocketlytics_sites"
	SaltsCollectionId   = "pocketlytics_salts"
	SharesCollectionId  = "pocketlytics_shares"
	APIKeysCollectionId = "pocketlytics_api_keys"
)

// Names are the names the migrations give the collections.
type Names struct {
	Sites   string
	Salts   string
	Shares  string
	APIKeys string
}

const namesKey = "pocketlytics.collectionNames"

// SetNames sets the names the migrations of app use (analytics.Register
// passes the configured ones). Without it they use the defaults.
func SetNames(app core.App, n Names) {
	app.Store().Set(namesKey, n)
}

func names(app core.App) Names {
	n, _ := app.Store().Get(namesKey).(Names)
	if n.Sites == "" {
		n.Sites = config.SitesCollection
	}
	if n.Salts == "" {
		n.Salts = config.SaltsCollection
	}
	if n.Shares == "" {
		n.Shares = config.SharesCollection
	}
	if n.APIKeys == "" {
		n.APIKeys = config.APIKeysCollection
	}
	return n
}

// ensureFree fails when app already has a collection called name that is not
// Pocketlytics' own: a host collection must never be merged with the plugin's.
func ensureFree(app core.App, name, id, setting string) error {
	c, err := app.FindCollectionByNameOrId(name)
	if err != nil || c.Id == id {
		return nil
	}
	return fmt.Errorf("pocketlytics: the app already has a collection named %q; "+
		"set analytics.Config.%s to another name for Pocketlytics' own", name, setting)
}
