package hooks

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// The breakdowns and the time series answer format=csv with the same rows
// as their JSON: a header row of the JSON names, then one line per item,
// quoted as RFC 4180 says. Text cells that a spreadsheet would run as a
// formula (starting with = + - @, a tab or a carriage return) get a leading
// apostrophe: a page path or referrer is visitor-controlled.

// wantsCSV reads the format parameter: json (default) or csv.
func wantsCSV(e *core.RequestEvent) (bool, error) {
	switch f := e.Request.URL.Query().Get("format"); f {
	case "", "json":
		return false, nil
	case "csv":
		return true, nil
	default:
		return false, e.BadRequestError(fmt.Sprintf("Unknown format %q (want json or csv).", f), nil)
	}
}

// encodeCSV renders items (structs) as CSV, one column per JSON field; a
// field the JSON omits when empty is a column only when some item has it.
func encodeCSV[T any](items []T) []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	typ := reflect.TypeFor[T]()
	var header []string
	var fields []int
	for i := range typ.NumField() {
		name, opts, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || !typ.Field(i).IsExported() {
			continue
		}
		if (strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")) && !slices.ContainsFunc(items, func(item T) bool {
			f := reflect.ValueOf(item).Field(i)
			return !f.IsZero() && (f.Kind() != reflect.Slice || f.Len() > 0)
		}) {
			continue
		}
		header = append(header, name)
		fields = append(fields, i)
	}
	w.Write(header)
	for _, item := range items {
		v := reflect.ValueOf(item)
		line := make([]string, len(fields))
		for j, i := range fields {
			f := v.Field(i)
			if f.Kind() == reflect.Pointer {
				if f.IsNil() {
					continue
				}
				f = f.Elem()
			}
			line[j] = csvCell(f.Interface())
		}
		w.Write(line)
	}
	w.Flush()
	return buf.Bytes()
}

// csvCell formats a value as its JSON does, and neutralises formulas in text.
func csvCell(v any) string {
	switch x := v.(type) {
	case string:
		if x != "" && strings.ContainsRune("=+-@\t\r", rune(x[0])) {
			return "'" + x
		}
		return x
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case []store.Revenue:
		// One cell: the total per currency, "99.98 EUR; 12.50 USD".
		parts := make([]string, len(x))
		for i, r := range x {
			parts[i] = r.Total + " " + r.Currency
		}
		return strings.Join(parts, "; ")
	default:
		return fmt.Sprint(x)
	}
}

func sendCSV(e *core.RequestEvent, filename string, data []byte) error {
	e.Response.Header().Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	return e.Blob(http.StatusOK, "text/csv; charset=utf-8", data)
}

// exportDimensions are the breakdowns in an export: every dimension but the
// property ones, which need a key.
var exportDimensions = []store.Dimension{
	store.DimPage, store.DimEntryPage, store.DimExitPage, store.DimHostname, store.DimReferrer, store.DimChannel,
	store.DimUTMSource, store.DimUTMMedium, store.DimUTMCampaign, store.DimUTMTerm, store.DimUTMContent,
	store.DimCountry, store.DimRegion, store.DimCity, store.DimDevice, store.DimBrowser, store.DimOS,
	store.DimEventName,
}

// maxExportRows bounds each breakdown of an export, so one request cannot
// read a whole high-cardinality column.
const maxExportRows = 10 * store.MaxLimit

// export answers GET …/export: a zip of timeseries.csv and one CSV per
// dimension, all rows (up to maxExportRows), for the period and filters.
func (h *analyticsAPI) export(e *core.RequestEvent) error {
	p, _, err := h.request(e)
	if err != nil {
		return err
	}
	ctx, release, err := h.acquire(e)
	if err != nil {
		return err
	}
	defer release()

	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	add := func(name string, data []byte) error {
		f, err := z.Create(name)
		if err == nil {
			_, err = f.Write(data)
		}
		return err
	}
	points, err := h.cfg.Store.Timeseries(ctx, p.Query, p.Interval)
	if err != nil {
		return storeError(e, err)
	}
	if err := add("timeseries.csv", encodeCSV(points)); err != nil {
		return e.InternalServerError("", err)
	}
	for _, dim := range exportDimensions {
		var rows []store.Row
		for len(rows) < maxExportRows {
			b, err := h.cfg.Store.Breakdown(ctx, p.Query, dim, store.MaxLimit, len(rows))
			if err != nil {
				return storeError(e, err)
			}
			rows = append(rows, b.Rows...)
			if len(b.Rows) < store.MaxLimit || len(rows) >= b.Total {
				break
			}
		}
		if err := add(string(dim)+".csv", encodeCSV(rows)); err != nil {
			return e.InternalServerError("", err)
		}
	}
	if err := z.Close(); err != nil {
		return e.InternalServerError("", err)
	}
	name := fmt.Sprintf("%s-%s.zip", e.Request.PathValue("siteId"), p.Period)
	e.Response.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	return e.Blob(http.StatusOK, "application/zip", buf.Bytes())
}
