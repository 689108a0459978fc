package geo

import (
	"strconv"

	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// record decodes the location fields of the common database layouts by
// name and kind, skipping everything else:
//
//	GeoIP2, GeoLite2, DB-IP Lite: country.iso_code, registered_country.iso_code,
//	  subdivisions[0].names.en, city.names.en, location.latitude/longitude
//	ip-location-db:              country_code, state1, city (a string),
//	  latitude, longitude
//
// A field of an unexpected kind is skipped rather than failing the lookup.
// It implements mmdbdata.CursorUnmarshaler, so decoding uses no reflection.
type record struct {
	country     string // country.iso_code
	registered  string // registered_country.iso_code
	countryCode string // country_code
	region      string
	city        string
	lat, lon    float64
}

func (r *record) location() Location {
	loc := Location{Region: r.region, City: r.city, Latitude: r.lat, Longitude: r.lon}
	switch {
	case r.country != "":
		loc.Country = r.country
	case r.countryCode != "":
		loc.Country = r.countryCode
	default:
		// Country databases leave country empty for some anycast and
		// satellite ranges but still name the registrant's country.
		loc.Country = r.registered
	}
	return loc
}

// UnmarshalMaxMindDBCursor implements mmdbdata.CursorUnmarshaler.
func (r *record) UnmarshalMaxMindDBCursor(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	return eachField(c, func(key []byte, val mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		switch string(key) {
		case "country":
			return field(val, "iso_code", &r.country)
		case "registered_country":
			return field(val, "iso_code", &r.registered)
		case "country_code":
			return text(val, &r.countryCode)
		case "subdivisions":
			return firstName(val, &r.region)
		case "state1":
			return text(val, &r.region)
		case "city":
			return name(val, &r.city)
		case "location":
			return r.readLocation(val)
		case "latitude":
			return float(val, &r.lat)
		case "longitude":
			return float(val, &r.lon)
		}
		return val.Skip()
	})
}

func (r *record) readLocation(c mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	return eachField(c, func(key []byte, val mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		switch string(key) {
		case "latitude":
			return float(val, &r.lat)
		case "longitude":
			return float(val, &r.lon)
		}
		return val.Skip()
	})
}

// eachField calls fn for each entry of the map at c; any other kind is skipped.
func eachField(c mmdbdata.Cursor, fn func(key []byte, val mmdbdata.Cursor) (mmdbdata.Cursor, error)) (mmdbdata.Cursor, error) {
	k, err := c.Kind()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	if k != mmdbdata.KindMap {
		return c.Skip()
	}
	m, err := c.Map()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	var next mmdbdata.Cursor
	for {
		key, val, ok := m.Next(next)
		if !ok {
			break
		}
		// The key aliases the database: fn may compare it, not keep it.
		if next, err = fn(key, val); err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return m.End()
}

// text reads a string value; other kinds are skipped.
func text(c mmdbdata.Cursor, dst *string) (mmdbdata.Cursor, error) {
	k, err := c.Kind()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	if k != mmdbdata.KindString {
		return c.Skip()
	}
	s, next, err := c.ReadString()
	if err == nil {
		*dst = s
	}
	return next, err
}

// field reads the string member key of the map at c.
func field(c mmdbdata.Cursor, key string, dst *string) (mmdbdata.Cursor, error) {
	return eachField(c, func(k []byte, val mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		if string(k) == key {
			return text(val, dst)
		}
		return val.Skip()
	})
}

// name reads either a plain string or a GeoIP2 {names: {en: ...}} map.
func name(c mmdbdata.Cursor, dst *string) (mmdbdata.Cursor, error) {
	k, err := c.Kind()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	if k == mmdbdata.KindString {
		return text(c, dst)
	}
	return eachField(c, func(key []byte, val mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		if string(key) == "names" {
			return field(val, "en", dst)
		}
		return val.Skip()
	})
}

// firstName reads the name of the first element of an array (GeoIP2's
// subdivisions, largest first).
func firstName(c mmdbdata.Cursor, dst *string) (mmdbdata.Cursor, error) {
	k, err := c.Kind()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	if k != mmdbdata.KindSlice {
		return c.Skip()
	}
	s, err := c.Slice()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	var next mmdbdata.Cursor
	for {
		i, val, ok := s.Next(next)
		if !ok {
			break
		}
		if i == 0 {
			next, err = name(val, dst)
		} else {
			next, err = val.Skip()
		}
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return s.End()
}

// float reads a float of either width, or a decimal string (some converted
// databases store coordinates as text).
func float(c mmdbdata.Cursor, dst *float64) (mmdbdata.Cursor, error) {
	k, err := c.Kind()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	switch k {
	case mmdbdata.KindFloat64, mmdbdata.KindFloat32:
		f, next, err := c.ReadFloat()
		if err == nil {
			*dst = f
		}
		return next, err
	case mmdbdata.KindString:
		var s string
		next, err := text(c, &s)
		if err == nil {
			if f, perr := strconv.ParseFloat(s, 64); perr == nil {
				*dst = f
			}
		}
		return next, err
	}
	return c.Skip()
}
