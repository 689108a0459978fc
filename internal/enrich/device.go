package enrich

import (
	"strings"

	"github.com/medama-io/go-useragent/agents"
)

// Device types.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
)

// Viewport widths (CSS pixels) that classify a device when its User-Agent
// does not: below mobileWidth is a phone, below tabletWidth a tablet.
const (
	mobileWidth = 576
	tabletWidth = 992
)

// browserNames and osNames turn go-useragent's names into display names;
// names not listed are used as they are.
var browserNames = map[agents.Browser]string{
	agents.BrowserSamsung: "Samsung Internet",
	agents.BrowserIE:      "Internet Explorer",
}

var osNames = map[agents.OS]string{
	agents.OSMacOS: "macOS",
}

// stepDevice sets the device type, browser, OS and screen width.
//
// Device types are desktop, mobile and tablet. Smart TVs and consoles count
// as desktop: they are large screens, and three types keep the dashboard's
// breakdown readable. Android devices whose User-Agent lacks "Mobile" are
// tablets (Android's own convention). When the User-Agent names no device,
// the viewport width decides.
func stepDevice(p *Pipeline, s *state) string {
	a := s.agent
	if b := a.Browser(); b != "" {
		if name, ok := browserNames[b]; ok {
			s.ev.Browser = name
		} else {
			s.ev.Browser = string(b)
		}
	}
	if o := a.OS(); o != "" {
		if name, ok := osNames[o]; ok {
			s.ev.OS = name
		} else {
			s.ev.OS = string(o)
		}
	}

	width := s.in.Hit.Width
	if width < 0 {
		width = 0
	}
	s.ev.ScreenWidth = min(width, 65535) // a UInt16 column in ClickHouse

	switch a.Device() {
	case agents.DeviceMobile:
		s.ev.Device = DeviceMobile
		if a.OS() == agents.OSAndroid && !strings.Contains(s.in.UserAgent, "Mobile") {
			s.ev.Device = DeviceTablet
		}
	case agents.DeviceTablet:
		s.ev.Device = DeviceTablet
	case agents.DeviceDesktop, agents.DeviceTV:
		s.ev.Device = DeviceDesktop
	default:
		switch {
		case width <= 0:
			// Unknown.
		case width < mobileWidth:
			s.ev.Device = DeviceMobile
		case width < tabletWidth:
			s.ev.Device = DeviceTablet
		default:
			s.ev.Device = DeviceDesktop
		}
	}
	return ""
}
