package migrations

import (
	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// An API key belongs to the user who created it (hooks.RegisterAPIKeys sets
// owner and the hash); nobody may write owner, hash or hint through the API.
const (
	apiKeysOwnerRule  = `@request.auth.id != "" && owner = @request.auth.id`
	apiKeysCreateRule = `@request.auth.id != "" && @request.auth.collectionName = "users" && ` +
		`(@request.body.owner:isset = false || @request.body.owner = @request.auth.id) && ` +
		`@request.body.hash:isset = false && @request.body.hint:isset = false`
	apiKeysUpdateRule = apiKeysOwnerRule + ` && @request.body.owner:isset = false && ` +
		`@request.body.hash:isset = false && @request.body.hint:isset = false`
)

// The `api_keys` collection holds the keys scripts read the analytics API
// with ("Authorization: Bearer KEY"). Only a SHA-256 hash of a key is
// stored; the key itself is in the create response, once.
func init() {
	m.Register(func(app core.App) error {
		users, err := app.FindCollectionByNameOrId("users")
		if err != nil {
			return err
		}
		name := names(app).APIKeys
		if err := ensureFree(app, name, APIKeysCollectionId, "APIKeysCollection (API_KEYS_COLLECTION)"); err != nil {
			return err
		}
		c := core.NewBaseCollection(name, APIKeysCollectionId)
		c.ListRule = types.Pointer(apiKeysOwnerRule)
		c.ViewRule = types.Pointer(apiKeysOwnerRule)
		c.CreateRule = types.Pointer(apiKeysCreateRule)
		c.UpdateRule = types.Pointer(apiKeysUpdateRule)
		c.DeleteRule = types.Pointer(apiKeysOwnerRule)
		c.Fields.Add(
			&core.TextField{
				Name:     "name",
				Required: true,
				Max:      100,
			},
			&core.RelationField{
				Name:         "sites",
				CollectionId: SitesCollectionId,
				Required:     true,
				MaxSelect:    100,
				Help:         "The sites the key may read; its owner must be able to see each.",
			},
			&core.RelationField{
				Name:          "owner",
				CollectionId:  users.Id,
				Required:      true,
				CascadeDelete: true,
				MaxSelect:     1,
			},
			&core.TextField{
				Name:     "hash",
				Required: true,
				Hidden:   true,
				Pattern:  `^[0-9a-f]{64}$`,
			},
			&core.TextField{
				Name: "hint",
				Max:  16,
				Help: "The start of the key, to tell keys apart.",
			},
			&core.DateField{Name: "lastUsed"},
			&core.AutodateField{Name: "created", OnCreate: true},
			&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
		)
		c.AddIndex("idx_api_keys_hash", true, "hash", "")
		c.AddIndex("idx_api_keys_owner", false, "owner", "")
		return app.Save(c)
	}, func(app core.App) error {
		c, err := app.FindCollectionByNameOrId(APIKeysCollectionId)
		if err != nil {
			return nil
		}
		return app.Delete(c)
	})
}
