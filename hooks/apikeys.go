package hooks

import (
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/access"
	"github.com/pocketlytics/pocketlytics/internal/sitecache"
)

// RegisterAPIKeys binds the hooks of the api_keys collection (created by the
// migrations package):
//
//   - on create through the API, owner is the signed-in user (unless a
//     superuser creates the key), a new key is generated, only its hash and
//     first characters (hint) are stored, and the key itself is added to
//     the create response as "key": the one time it is shown;
//   - on create and update, every listed site must be one the owner can
//     see: a key never reads more than its owner.
func RegisterAPIKeys(app core.App) error {
	app.OnRecordCreateRequest(access.APIKeysCollection).BindFunc(func(e *core.RecordRequestEvent) error {
		if e.Auth != nil && !e.HasSuperuserAuth() {
			e.Record.Set("owner", e.Auth.Id)
		}
		if err := ownerSeesSites(e.App, e.Record); err != nil {
			return e.BadRequestError("", err)
		}
		key, hash := access.NewKey()
		e.Record.Set("hash", hash)
		e.Record.Set("hint", key[:len(access.KeyPrefix)+4])
		e.Record.WithCustomData(true)
		e.Record.Set("key", key)
		return e.Next()
	})
	app.OnRecordUpdateRequest(access.APIKeysCollection).BindFunc(func(e *core.RecordRequestEvent) error {
		if err := ownerSeesSites(e.App, e.Record); err != nil {
			return e.BadRequestError("", err)
		}
		return e.Next()
	})
	return nil
}

// ownerSeesSites checks each site of an API key against the sites view rule
// for the key's owner.
func ownerSeesSites(app core.App, key *core.Record) error {
	owner, err := app.FindRecordById("users", key.GetString("owner"))
	if err != nil {
		return validation.Errors{"owner": validation.NewError("validation_invalid_owner", "The key needs an owner.")}
	}
	info := &core.RequestInfo{Auth: owner, Query: map[string]string{}, Headers: map[string]string{}, Body: map[string]any{}}
	for _, id := range key.GetStringSlice("sites") {
		site, err := app.FindRecordById(sitecache.Collection, id)
		ok := err == nil
		if ok {
			ok, _ = app.CanAccessRecord(site, info, site.Collection().ViewRule)
		}
		if !ok {
			return validation.Errors{"sites": validation.NewError("validation_site_not_visible",
				"A key can only read sites its owner can see.")}
		}
	}
	return nil
}
