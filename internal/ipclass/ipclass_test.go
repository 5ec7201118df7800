package ipclass

import "testing"

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		family Family
		scope  string
	}{
		{"127.0.0.1", IPv4, ""},
		{"::1", IPv6, ""},
		{"fe80::1%eth0", IPv6, ""},
		{"::ffff:1.2.3.4", IPv6, ""},
		{"224.0.0.0", IPv4, "multicast, local (224.0.0.0–224.0.0.255, reserved for routing protocols)"},
		{"224.0.0.255", IPv4, "multicast, local (224.0.0.0–224.0.0.255, reserved for routing protocols)"},
		{"224.0.1.0", IPv4, "multicast, globally scoped (224.0.1.0–238.255.255.255)"},
		{"238.255.255.255", IPv4, "multicast, globally scoped (224.0.1.0–238.255.255.255)"},
		{"239.0.0.0", IPv4, "multicast, administratively scoped (239.0.0.0–239.255.255.255, organisation-local)"},
		{"239.255.80.88", IPv4, "multicast, administratively scoped (239.0.0.0–239.255.255.255, organisation-local)"},
		{"240.0.0.1", IPv4, ""},
		{"223.255.255.255", IPv4, ""},
		{"::ffff:239.1.2.3", IPv6, "multicast, administratively scoped (239.0.0.0–239.255.255.255, organisation-local)"},
		{"ff02::1", IPv6, "multicast, link-local scope"},
		{"ff05::1:3", IPv6, "multicast, site-local scope"},
		{"ff1e::1234", IPv6, "multicast, global scope"},
		{"ff00::1", IPv6, "multicast, reserved or unassigned scope"},
		{"", NotIP, ""},
		{"hello", NotIP, ""},
		{" 1.2.3.4", NotIP, ""},
		{"1.2.3.4 ", NotIP, ""},
		{"1.2.3", NotIP, ""},
		{"256.1.1.1", NotIP, ""},
		{"01.2.3.4", NotIP, ""},
		{"[::1]", NotIP, ""},
		{"1.2.3.4:80", NotIP, ""},
	}
	for _, tt := range tests {
		got := Classify(tt.in)
		if got.Family != tt.family || got.Scope != tt.scope {
			t.Errorf("Classify(%q) = %v, %q; want %v, %q", tt.in, got.Family, got.Scope, tt.family, tt.scope)
		}
	}
}

func TestFamilyString(t *testing.T) {
	t.Parallel()
	for f, want := range map[Family]string{NotIP: "not an IP address", IPv4: "IPv4", IPv6: "IPv6"} {
		if got := f.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", f, got, want)
		}
	}
}
