package hooks_test

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/pocketlytics/pocketlytics/access"
)

// jsonItems decodes a response's list (items or points) keeping each
// object's keys in order.
func jsonItems(t *testing.T, body, list string) (keys []string, rows []map[string]any) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	var items []json.RawMessage
	json.Unmarshal(raw[list], &items)
	for i, it := range items {
		dec := json.NewDecoder(bytes.NewReader(it))
		dec.UseNumber()
		row := map[string]any{}
		dec.Token() // {
		for dec.More() {
			k, _ := dec.Token()
			var v any
			dec.Decode(&v)
			row[k.(string)] = v
			if i == 0 {
				keys = append(keys, k.(string))
			}
		}
		rows = append(rows, row)
	}
	return keys, rows
}

// sameAsJSON checks a CSV against the JSON of the same request: header =
// the JSON names, then every cell equal to its JSON value.
func sameAsJSON(t *testing.T, what, csvText, jsonBody, list string) {
	t.Helper()
	keys, rows := jsonItems(t, jsonBody, list)
	if len(rows) == 0 {
		t.Fatalf("%s: no rows in the JSON: a weak test", what)
	}
	recs, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if strings.Join(recs[0], ",") != strings.Join(keys, ",") {
		t.Fatalf("%s: header %v, want %v", what, recs[0], keys)
	}
	if len(recs)-1 != len(rows) {
		t.Fatalf("%s: %d CSV rows, want %d", what, len(recs)-1, len(rows))
	}
	for i, row := range rows {
		for j, k := range keys {
			cell := recs[i+1][j]
			switch v := row[k].(type) {
			case json.Number:
				want, _ := v.Float64()
				if got, err := strconv.ParseFloat(cell, 64); err != nil || got != want {
					t.Fatalf("%s row %d %s: %q, want %v", what, i, k, cell, v)
				}
			case string:
				if cell != v && cell != "'"+v {
					t.Fatalf("%s row %d %s: %q, want %q", what, i, k, cell, v)
				}
			}
		}
	}
}

func TestCSV(t *testing.T) {
	_, _, srv := accessServer(t)
	owner := auth(ownerID, t)
	for _, path := range []string{"timeseries", "breakdown/page", "breakdown/referrer", "breakdown/country", "breakdown/city"} {
		t.Run(path, func(t *testing.T) {
			list := "items"
			if path == "timeseries" {
				list = "points"
			}
			q := "period=30d&limit=50&page=1"
			res, jsonBody := call(t, srv, "GET", apiURL(berlinSiteID, path, q), owner, nil)
			wantStatus(t, "json", res, jsonBody, 200)
			res, csvBody := call(t, srv, "GET", apiURL(berlinSiteID, path, q+"&format=csv"), owner, nil)
			wantStatus(t, "csv", res, csvBody, 200)
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
				t.Fatalf("content type %q", ct)
			}
			if !strings.Contains(csvBody, "\r\n") {
				t.Fatal("lines must end in CRLF (RFC 4180)")
			}
			sameAsJSON(t, path, csvBody, jsonBody, list)
		})
	}
	res, body := call(t, srv, "GET", apiURL(berlinSiteID, "breakdown/page", "format=xml"), owner, nil)
	wantStatus(t, "unknown format", res, body, 400)
	res, body = call(t, srv, "GET", apiURL(siteID, "timeseries", "period=7d&format=csv"), auth(strangerID, t), nil)
	wantStatus(t, "csv of a site the caller cannot see", res, body, 404)
}

func TestExport(t *testing.T) {
	_, app, srv := accessServer(t)
	owner := auth(ownerID, t)
	// Read through a share link: the export is one more analytics route.
	shares, _ := app.FindCollectionByNameOrId(access.SharesCollection)
	share := core.NewRecord(shares)
	share.Set("site", berlinSiteID)
	if err := app.Save(share); err != nil {
		t.Fatal(err)
	}
	q := "period=30d&filters=" + `[["device","is",["desktop"]]]` + "&share=" + share.GetString("token")

	res, body := call(t, srv, "GET", apiURL(berlinSiteID, "export", strings.ReplaceAll(q, `"`, "%22")), nil, nil)
	wantStatus(t, "export", res, body, 200)
	z, err := zip.NewReader(bytes.NewReader([]byte(body)), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range z.File {
		r, _ := f.Open()
		data, _ := io.ReadAll(r)
		files[f.Name] = string(data)
	}
	for _, name := range []string{"timeseries.csv", "page.csv", "referrer.csv", "country.csv", "device.csv", "event_name.csv"} {
		if _, ok := files[name]; !ok {
			t.Fatalf("the export lacks %s: %v", name, len(files))
		}
	}
	jq := strings.ReplaceAll(q, `"`, "%22")
	_, jsonBody := call(t, srv, "GET", apiURL(berlinSiteID, "breakdown/page", jq+"&limit=1000"), nil, nil)
	sameAsJSON(t, "page.csv", files["page.csv"], jsonBody, "items")
	_, jsonBody = call(t, srv, "GET", apiURL(berlinSiteID, "timeseries", jq), owner, nil)
	sameAsJSON(t, "timeseries.csv", files["timeseries.csv"], jsonBody, "points")

	res, body = call(t, srv, "GET", apiURL(siteID, "export", "period=30d&share="+share.GetString("token")), nil, nil)
	wantStatus(t, "export of another site", res, body, 404)
}
