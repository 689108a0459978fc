package salt

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/migrations"
)

// Collection is the id of the hidden system collection that CollectionStore
// uses (created by migrations/1730000001_salts.go, under a name the host
// app may choose). Its rules are nil, so only superusers can read it, and
// its value field is hidden from API responses.
const Collection = migrations.SaltsCollectionId

// CollectionStore keeps salts in the app's own database, for a single
// instance. Instances that share a Redis use RedisStore instead.
type CollectionStore struct {
	app core.App
}

// NewCollectionStore returns a store on app's `salts` collection.
func NewCollectionStore(app core.App) *CollectionStore {
	return &CollectionStore{app: app}
}

// Salt implements Store.
func (s *CollectionStore) Salt(ctx context.Context, day string, fresh []byte) ([]byte, error) {
	if v, err := s.find(ctx, day); err == nil || !errors.Is(err, sql.ErrNoRows) {
		return v, err
	}

	col, err := s.app.FindCachedCollectionByNameOrId(Collection)
	if err != nil {
		return nil, err
	}
	rec := core.NewRecord(col)
	rec.Set("day", day)
	rec.Set("value", hex.EncodeToString(fresh))
	if err := s.app.SaveWithContext(ctx, rec); err != nil {
		// Lost a race on the unique day index: use the winner's salt.
		if v, ferr := s.find(ctx, day); ferr == nil {
			return v, nil
		}
		return nil, err
	}
	return append([]byte(nil), fresh...), nil
}

func (s *CollectionStore) find(ctx context.Context, day string) ([]byte, error) {
	rec := &core.Record{}
	err := s.app.RecordQuery(Collection).
		WithContext(ctx).
		AndWhere(dbx.HashExp{"day": day}).
		Limit(1).
		One(rec)
	if err != nil {
		return nil, err
	}
	v, err := hex.DecodeString(rec.GetString("value"))
	if err != nil {
		return nil, fmt.Errorf("salt of %s: %w", day, err)
	}
	return v, nil
}

// Prune implements Store.
func (s *CollectionStore) Prune(ctx context.Context, before string) error {
	var recs []*core.Record
	err := s.app.RecordQuery(Collection).
		WithContext(ctx).
		AndWhere(dbx.NewExp("[[day]] < {:day}", dbx.Params{"day": before})).
		All(&recs)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if err := s.app.DeleteWithContext(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}
