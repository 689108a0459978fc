package sqlquery

import (
	"strings"
	"testing"
	"time"

	"github.com/pocketlytics/pocketlytics/internal/store"
)

// textDialect is a minimal dialect for inspecting the generated SQL.
type textDialect struct{}

func (textDialect) Time(t time.Time) Frag           { return Arg(t.Unix()) }
func (textDialect) Secs(ts string) string           { return ts }
func (textDialect) Millis() string                  { return "ms" }
func (textDialect) IntDiv(a, b string) string       { return a + "/" + b }
func (textDialect) CountIf(cond string) string      { return "countIf(" + cond + ")" }
func (textDialect) AnyIf(cond string) string        { return "anyIf(" + cond + ")" }
func (textDialect) Count() string                   { return "count()" }
func (textDialect) Uniq(expr string) string         { return "uniq(" + expr + ")" }
func (textDialect) Sum(expr string) string          { return "sum(" + expr + ")" }
func (textDialect) Int(expr string) string          { return expr }
func (textDialect) MinIf(expr, cond string) string  { return "minIf(" + expr + "," + cond + ")" }
func (textDialect) MaxIf(expr, cond string) string  { return "maxIf(" + expr + "," + cond + ")" }
func (textDialect) Concat(ms, s string) string      { return ms + "||" + s }
func (textDialect) Substr(s string, pos int) string { return "substr(" + s + ")" }
func (textDialect) Case(conds, vals []string, last string) string {
	return "case(" + strings.Join(conds, ",") + strings.Join(vals, ",") + last + ")"
}
func (textDialect) Contains(hay, needle Frag) Frag { return Cat("contains(", hay, ",", needle, ")") }
func (d textDialect) PropMatch(key string, match func(Frag) Frag) Frag {
	return Cat("(", d.PropHas(key), " AND ", match(d.PropValue(key)), ")")
}
func (textDialect) PropValue(key string) Frag      { return Cat("prop(", Arg(key), ")") }
func (textDialect) PropHas(key string) Frag        { return Cat("has(", Arg(key), ")") }
func (textDialect) JoinUsing(l, r Frag) Frag       { return Cat("(", l, ") JOIN (", r, ")") }
func (textDialect) ValueKey(v Frag) (Frag, bool)   { return Cat("hash(", v, ")"), true }
func (textDialect) LeftJoinUsing(l, r Frag) Frag   { return Cat("(", l, ") LEFT JOIN (", r, ")") }
func (textDialect) Coalesce(expr string) string    { return expr }
func (textDialect) Visits() string                 { return "visits" }
func (textDialect) Wildcard(v Frag, p string) Frag { return Cat("glob(", v, ", ", Arg(p), ")") }
func (textDialect) Weight() string                 { return "sign" }

// TestValuesAreBound: whatever a request puts in filter values or property
// keys reaches the database as bound arguments, never as SQL text, and the
// arguments line up with the placeholders.
func TestValuesAreBound(t *testing.T) {
	evil := []string{"x') OR 1=1 --", `"; DROP TABLE events; --`, "?", "\\'"}
	var filters []store.Filter
	for _, d := range []store.Dimension{store.DimPage, store.DimCountry, store.DimEntryPage, store.DimEventName, store.PropDimension(evil[0])} {
		for _, op := range []store.Op{store.OpIs, store.OpIsNot, store.OpContains} {
			filters = append(filters, store.Filter{Dimension: d, Op: op, Values: evil})
		}
	}
	q := store.Query{SiteID: "site' --", From: time.Unix(1700000000, 0), To: time.Unix(1700086400, 0), Location: time.UTC, Filters: filters}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := store.NewBuckets(q, store.IntervalHour)
	if err != nil {
		t.Fatal(err)
	}
	series := timeseriesSQL(textDialect{}, q, b)
	page, count, _ := breakdownSQL(textDialect{}, q, store.PropDimension(evil[1]), 10, 0)
	page2, _, _ := breakdownSQL(textDialect{}, q, store.DimExitPage, 10, 0)
	for name, f := range map[string]Frag{
		"overview": overviewSQL(textDialect{}, q), "timeseries": series,
		"breakdown": page, "breakdown count": count, "session breakdown": page2,
	} {
		t.Run(name, func(t *testing.T) {
			for _, v := range append(evil, q.SiteID) {
				if v != "?" && strings.Contains(f.SQL, v) {
					t.Fatalf("%q is in the SQL text", v)
				}
			}
			if n := strings.Count(f.SQL, "?"); n != len(f.Args) {
				t.Fatalf("%d placeholders, %d arguments", n, len(f.Args))
			}
		})
	}
}
