package vpn

import "testing"

func TestMTUFromUnderlay(t *testing.T) {
	for _, tt := range []struct{ under, want int }{
		{1500, 1420},
		{1400, 1320},
		{1380, 1300},
		{9000, 8920},
		{1300, 1280}, // never below the IPv6 minimum
	} {
		if got := mtuFromUnderlay(tt.under); got != tt.want {
			t.Errorf("mtuFromUnderlay(%d) = %d, want %d", tt.under, got, tt.want)
		}
	}
}
