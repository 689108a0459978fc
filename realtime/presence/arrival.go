package presence

import (
	"encoding/json/jsontext"
	"math"
	"strconv"
	"time"
)

// appendJSON appends a as json.Marshal would write it, without reflection:
// the live worker encodes the arrival of every hit it applies (the script
// keeps it only when the visitor arrives), and json.Marshal cost a
// microsecond and an allocation each.
func (a *Arrival) appendJSON(b []byte) []byte {
	b = append(b, `{"visitor":`...)
	b, _ = jsontext.AppendQuote(b, a.Visitor)
	b = append(b, `,"time":"`...)
	b = a.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","entry":`...)
	b, _ = jsontext.AppendQuote(b, a.Entry)
	b = appendString(b, `,"referrer":`, a.Referrer)
	b = appendString(b, `,"country":`, a.Country)
	b = appendString(b, `,"region":`, a.Region)
	b = appendString(b, `,"city":`, a.City)
	b = appendFloat(b, `,"lat":`, a.Lat)
	b = appendFloat(b, `,"lon":`, a.Lon)
	b = appendString(b, `,"device":`, a.Device)
	b = appendString(b, `,"browser":`, a.Browser)
	b = appendString(b, `,"os":`, a.OS)
	return append(b, '}')
}

// appendString appends an omitempty string member.
func appendString(b []byte, name, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, name...)
	b, _ = jsontext.AppendQuote(b, v) // invalid UTF-8 becomes U+FFFD, as json.Marshal does
	return b
}

// appendFloat appends an omitempty number member in json.Marshal's format.
// JSON has no NaN or infinity; GeoIP never gives them, and they are left out.
func appendFloat(b []byte, name string, v float64) []byte {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return b
	}
	b = append(b, name...)
	format := byte('f')
	if abs := math.Abs(v); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	return strconv.AppendFloat(b, v, format, -1, 64)
}
