package hooks

import (
	"bytes"
	"strings"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/internal/queryparams"
	"github.com/pocketlytics/pocketlytics/migrations"
)

// RegisterSegments binds the value rule of the segments collection: its
// filters are a non-empty list the analytics API accepts in its JSON form,
// so a saved segment always applies. Anything else is a 400 on filters.
func RegisterSegments(app core.App) error {
	app.OnRecordValidate(migrations.SegmentsCollectionId).BindFunc(func(e *core.RecordEvent) error {
		if msg := segmentFiltersError(e.Record); msg != "" {
			return validation.Errors{"filters": validation.NewError("validation_segment_filters", msg)}
		}
		return e.Next()
	})
	return nil
}

func segmentFiltersError(r *core.Record) string {
	raw := bytes.TrimSpace([]byte(r.GetString("filters")))
	if !bytes.HasPrefix(raw, []byte("[")) {
		return "Filters must be a list of [dimension, operator, value]."
	}
	filters, err := queryparams.ParseFilters(string(raw))
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), queryparams.ErrInvalid.Error()+": ")
		return strings.ToUpper(msg[:1]) + msg[1:] + "."
	}
	if len(filters) == 0 {
		return "A segment needs at least one filter."
	}
	return ""
}
