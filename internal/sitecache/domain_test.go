package sitecache

import "testing"

func TestNormalizeDomain(t *testing.T) {
	scenarios := []struct {
		in   string
		want string // "" = error
	}{
		{"example.com", "example.com"},
		{"  Example.COM. ", "example.com"},
		{"www.example.com", "www.example.com"},
		{"a-b.example.co.uk", "a-b.example.co.uk"},
		{"localhost", "localhost"},
		{"bücher.de", "xn--bcher-kva.de"},
		{"xn--bcher-kva.de", "xn--bcher-kva.de"},
		{"", ""},
		{"   ", ""},
		{"https://example.com", ""},
		{"example.com/blog", ""},
		{"example.com:8080", ""},
		{"*.example.com", ""},
		{"user@example.com", ""},
		{"exa mple.com", ""},
		{"-example.com", ""},
		{"example-.com", ""},
		{"example..com", ""},
		{"exa_mple.com", ""},
		{string(make([]byte, 64)) + ".com", ""},
		{"[::1]", ""},
	}
	for _, s := range scenarios {
		t.Run(s.in, func(t *testing.T) {
			got, err := NormalizeDomain(s.in)
			if s.want == "" {
				if err == nil {
					t.Fatalf("want an error, got %q", got)
				}
				return
			}
			if err != nil || got != s.want {
				t.Fatalf("got %q, %v; want %q", got, err, s.want)
			}
		})
	}
}

func TestAllowsHost(t *testing.T) {
	exact := Site{Domains: []string{"example.com", "www.shop.example"}}
	subs := Site{Domains: []string{"example.com"}, AllowSubdomains: true}

	scenarios := []struct {
		name string
		site Site
		host string
		want bool
	}{
		{"exact", exact, "example.com", true},
		{"case", exact, "EXAMPLE.com", true},
		{"trailing dot", exact, "example.com.", true},
		{"www added", exact, "www.example.com", true},
		{"www listed, bare host", exact, "shop.example", true},
		{"www listed, www host", exact, "www.shop.example", true},
		{"subdomain without flag", exact, "blog.example.com", false},
		{"other domain", exact, "example.org", false},
		{"suffix is not a subdomain", subs, "badexample.com", false},
		{"subdomain", subs, "blog.example.com", true},
		{"deep subdomain", subs, "a.b.example.com", true},
		{"apex with flag", subs, "example.com", true},
		{"parent of domain", Site{Domains: []string{"blog.example.com"}, AllowSubdomains: true}, "example.com", false},
		{"empty host", subs, "", false},
		{"only www", subs, "www.", false},
		{"no domains", Site{AllowSubdomains: true}, "example.com", false},
	}
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			if got := s.site.AllowsHost(s.host); got != s.want {
				t.Fatalf("AllowsHost(%q) = %v, want %v", s.host, got, s.want)
			}
		})
	}
}
