package event

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"time"
)

// The queue's wire format.
//
// An encoded event starts with a format byte, then its fields in a fixed
// order (see AppendBinary).
//
// Format 1:
//
//	0x01                          format
//	flags                         1 byte: bit 0 Entry, bit 1 latitude/longitude follow,
//	                              bit 2 engagement follows, bit 3 revenue follows
//	ID                            string
//	Time                          varint (zigzag), unix milliseconds
//	SiteID, Type, Name            strings
//	len(Props)                    uvarint, then key, value strings in ascending key order
//	Hostname, Pathname, Title, ReferrerHost, Channel,
//	UTMSource, UTMMedium, UTMCampaign, UTMTerm, UTMContent,
//	Country, Region, City         strings
//	Latitude, Longitude           2 x 8 bytes, IEEE 754 bits, little endian (flag bit 1 only)
//	Device, Browser, OS           strings
//	ScreenWidth                   varint (zigzag)
//	VisitorID, SessionID          2 x 8 bytes, little endian
//	Engaged, Scroll               2 x varint (zigzag) (flag bit 2 only)
//	RevenueAmount                 varint (zigzag) (flag bit 3 only)
//	RevenueCurrency               string (flag bit 3 only)
//
// A string is a uvarint byte length and the bytes as they are. Nothing may
// follow the last field. From the first release on, a change of layout
// takes a new format byte, and one release reads both; a new optional field
// behind a flag bit keeps every older encoding valid.
const (
	// FormatBinaryV1 is the first byte of an event in format 1.
	FormatBinaryV1 byte = 0x01

	flagEntry   = 1 << 0
	flagLatLon  = 1 << 1
	flagEngage  = 1 << 2
	flagRevenue = 1 << 3
	knownFlags  = flagEntry | flagLatLon | flagEngage | flagRevenue
)

// ErrMalformed is wrapped by the errors of UnmarshalBinary for input that is
// not an encoded event.
var ErrMalformed = errors.New("event: malformed encoding")

var (
	_ encoding.BinaryMarshaler   = (*Event)(nil)
	_ encoding.BinaryAppender    = (*Event)(nil)
	_ encoding.BinaryUnmarshaler = (*Event)(nil)
)

// The range of times whose unix milliseconds fit an int64.
var (
	minTime = time.UnixMilli(math.MinInt64)
	maxTime = time.UnixMilli(math.MaxInt64)
)

// MarshalBinary encodes the event in the current binary format.
func (e *Event) MarshalBinary() ([]byte, error) {
	return e.AppendBinary(nil)
}

// AppendBinary appends the event's binary encoding to b, in the layout
// described at FormatBinaryV1. The encoding is deterministic: equal events
// give equal bytes (Props are written in key order). Time is kept to the
// millisecond and in UTC; strings are kept byte for byte.
func (e *Event) AppendBinary(b []byte) ([]byte, error) {
	if e.Time.Before(minTime) || e.Time.After(maxTime) {
		return b, fmt.Errorf("event: time %v cannot be encoded in unix milliseconds", e.Time)
	}

	// Room for everything up front: one growth at most.
	var arr [16]string
	keys := arr[:0]
	size := 2 + 10 + 10 + 16 + 10 + 8 + 8 + 20 + 10 // format, flags, time, props count, lat/lon, width, ids, engagement, revenue
	for _, s := range [...]string{
		e.ID, e.SiteID, e.Type, e.Name,
		e.Hostname, e.Pathname, e.Title, e.ReferrerHost, e.Channel,
		e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMTerm, e.UTMContent,
		e.Country, e.Region, e.City, e.Device, e.Browser, e.OS, e.RevenueCurrency,
	} {
		size += stringSize(s)
	}
	for k, v := range e.Props {
		keys = append(keys, k)
		size += stringSize(k) + stringSize(v)
	}
	b = slices.Grow(b, size)

	var flags byte
	if e.Entry {
		flags |= flagEntry
	}
	hasLatLon := math.Float64bits(e.Latitude)|math.Float64bits(e.Longitude) != 0
	if hasLatLon {
		flags |= flagLatLon
	}
	hasEngage := e.Engaged != 0 || e.Scroll != 0
	if hasEngage {
		flags |= flagEngage
	}
	hasRevenue := e.RevenueAmount != 0 || e.RevenueCurrency != ""
	if hasRevenue {
		flags |= flagRevenue
	}
	b = append(b, FormatBinaryV1, flags)
	b = appendString(b, e.ID)
	b = binary.AppendVarint(b, e.Time.UnixMilli())
	b = appendString(b, e.SiteID)
	b = appendString(b, e.Type)
	b = appendString(b, e.Name)

	b = binary.AppendUvarint(b, uint64(len(keys)))
	slices.Sort(keys)
	for _, k := range keys {
		b = appendString(b, k)
		b = appendString(b, e.Props[k])
	}

	for _, s := range [...]string{
		e.Hostname, e.Pathname, e.Title, e.ReferrerHost, e.Channel,
		e.UTMSource, e.UTMMedium, e.UTMCampaign, e.UTMTerm, e.UTMContent,
		e.Country, e.Region, e.City,
	} {
		b = appendString(b, s)
	}
	if hasLatLon {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.Latitude))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(e.Longitude))
	}
	b = appendString(b, e.Device)
	b = appendString(b, e.Browser)
	b = appendString(b, e.OS)
	b = binary.AppendVarint(b, int64(e.ScreenWidth))
	b = binary.LittleEndian.AppendUint64(b, e.VisitorID)
	b = binary.LittleEndian.AppendUint64(b, e.SessionID)
	if hasEngage {
		b = binary.AppendVarint(b, int64(e.Engaged))
		b = binary.AppendVarint(b, int64(e.Scroll))
	}
	if hasRevenue {
		b = binary.AppendVarint(b, e.RevenueAmount)
		b = appendString(b, e.RevenueCurrency)
	}
	return b, nil
}

// stringSize is the encoded size of s.
func stringSize(s string) int {
	return (bits.Len64(uint64(len(s))|1)+6)/7 + len(s)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary decodes an event encoded by AppendBinary. It replaces
// every field of e. Other input fails with an error wrapping ErrMalformed;
// it never panics, and it allocates no more than about the length of data.
func (e *Event) UnmarshalBinary(data []byte) error {
	return DecodeString(string(data), e)
}

// DecodeString is UnmarshalBinary for an encoding held in a string (as a
// Redis client returns it). The event's strings share s's memory.
func DecodeString(s string, e *Event) error {
	switch {
	case len(s) == 0:
		return fmt.Errorf("%w: empty input", ErrMalformed)
	case s[0] != FormatBinaryV1:
		return fmt.Errorf("%w: unknown format byte 0x%02x", ErrMalformed, s[0])
	}
	return e.decodeV1(s)
}

// decoder reads format 1 fields from a string; the first failure sticks and
// later reads return zero values.
type decoder struct {
	s     string
	off   int
	err   error
	field string // field being read, for the error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s at byte %d: %s", ErrMalformed, d.field, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.off+i >= len(d.s) {
			d.fail("truncated varint")
			return 0
		}
		c := d.s[d.off+i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			d.off += i + 1
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail("varint overflows 64 bits")
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// int reads a varint that must fit an int.
func (d *decoder) int(field string) int {
	d.field = field
	x := d.varint()
	if d.err == nil && int64(int(x)) != x {
		d.fail("%d overflows int", x)
	}
	return int(x)
}

func (d *decoder) uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.s)-d.off < 8 {
		d.fail("truncated: 8 bytes needed, %d left", len(d.s)-d.off)
		return 0
	}
	var x uint64
	for i := 7; i >= 0; i-- {
		x = x<<8 | uint64(d.s[d.off+i])
	}
	d.off += 8
	return x
}

func (d *decoder) string(field string) string {
	d.field = field
	start := d.off
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if left := len(d.s) - d.off; n > uint64(left) {
		d.off = start // report where the string starts
		d.fail("length %d exceeds the %d bytes left", n, left)
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

// decodeV1 decodes format 1. Strings of the event are substrings of s.
func (e *Event) decodeV1(s string) error {
	d := decoder{s: s, off: 1, field: "flags"}
	if len(s) < 2 {
		d.fail("truncated")
		return d.err
	}
	flags := s[1]
	if flags&^knownFlags != 0 {
		d.fail("unknown flags 0x%02x", flags)
		return d.err
	}
	d.off = 2

	var ev Event
	ev.Entry = flags&flagEntry != 0
	ev.ID = d.string("id")
	d.field = "time"
	ev.Time = time.UnixMilli(d.varint()).UTC()
	ev.SiteID = d.string("site")
	ev.Type = d.string("type")
	ev.Name = d.string("name")

	d.field = "props"
	if n := d.uvarint(); n > 0 && d.err == nil {
		// Each pair takes at least two bytes: a count beyond that is damage,
		// caught before it sizes an allocation.
		if n > uint64(len(s)-d.off)/2 {
			d.fail("%d pairs cannot fit the %d bytes left", n, len(s)-d.off)
			return d.err
		}
		ev.Props = make(map[string]string, n)
		prev := ""
		for i := uint64(0); i < n && d.err == nil; i++ {
			k := d.string("props key")
			v := d.string("props value")
			if d.err == nil && i > 0 && k <= prev {
				d.fail("key %q not after %q: keys must be unique and sorted", k, prev)
			}
			ev.Props[k], prev = v, k
		}
	}

	ev.Hostname = d.string("host")
	ev.Pathname = d.string("path")
	ev.Title = d.string("title")
	ev.ReferrerHost = d.string("ref")
	ev.Channel = d.string("ch")
	ev.UTMSource = d.string("us")
	ev.UTMMedium = d.string("um")
	ev.UTMCampaign = d.string("uc")
	ev.UTMTerm = d.string("ut")
	ev.UTMContent = d.string("ux")
	ev.Country = d.string("cc")
	ev.Region = d.string("rg")
	ev.City = d.string("city")
	if flags&flagLatLon != 0 {
		d.field = "lat"
		ev.Latitude = math.Float64frombits(d.uint64())
		d.field = "lon"
		ev.Longitude = math.Float64frombits(d.uint64())
	}
	ev.Device = d.string("dev")
	ev.Browser = d.string("br")
	ev.OS = d.string("os")
	ev.ScreenWidth = d.int("w")
	d.field = "vid"
	ev.VisitorID = d.uint64()
	d.field = "sid"
	ev.SessionID = d.uint64()
	if flags&flagEngage != 0 {
		ev.Engaged = d.int("e")
		ev.Scroll = d.int("s")
	}
	if flags&flagRevenue != 0 {
		d.field = "rev"
		ev.RevenueAmount = d.varint()
		ev.RevenueCurrency = d.string("cur")
	}

	if d.err == nil && d.off != len(s) {
		d.field = "end"
		d.fail("%d trailing bytes", len(s)-d.off)
	}
	if d.err != nil {
		return d.err
	}
	*e = ev
	return nil
}
