package web

import (
	"errors"
	"math"
	"testing"
)

func TestFormatCents(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "$0.00"},
		{5, "$0.05"},
		{50, "$0.50"},
		{100, "$1.00"},
		{123450, "$1,234.50"},
		{100000, "$1,000.00"},
		{99999, "$999.99"},
		{123456789, "$1,234,567.89"},
		{-250, "-$2.50"},
		{math.MaxInt64, "$92,233,720,368,547,758.07"},
		{math.MinInt64, "-$92,233,720,368,547,758.08"},
	} {
		if got := FormatCents(tc.in); got != tc.want {
			t.Errorf("FormatCents(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseDollars(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  error
	}{
		{"12", 1200, nil},
		{"12.5", 1250, nil},
		{"12.50", 1250, nil},
		{"$1,200", 120000, nil},
		{" $ 1,200.05 ", 120005, nil},
		{"0", 0, nil},
		{"0.01", 1, nil},
		{".5", 50, nil},
		{"1,234,567.89", 123456789, nil},
		// 0.1 + 0.2 in a float is 0.30000000000000004; digits stay exact.
		{"0.29", 29, nil},
		{"19.99", 1999, nil},
		{"", 0, ErrAmountEmpty},
		{"  ", 0, ErrAmountEmpty},
		{"-5", 0, ErrAmountNegative},
		{"$-5", 0, ErrAmountNegative},
		{"-$5", 0, ErrAmountNegative},
		{"12.505", 0, ErrAmountDecimals},
		{"1.001", 0, ErrAmountDecimals},
		{"12.", 0, ErrAmountMalformed},
		{"abc", 0, ErrAmountMalformed},
		{"1e3", 0, ErrAmountMalformed},
		{"1,20", 0, ErrAmountMalformed},
		{"12,00.00", 0, ErrAmountMalformed},
		{",100", 0, ErrAmountMalformed},
		{"1 000", 0, ErrAmountMalformed},
		{"$", 0, ErrAmountMalformed},
		{".", 0, ErrAmountMalformed},
		{"+5", 0, ErrAmountMalformed},
		{"99999999999999999999", 0, ErrAmountTooLarge},
		{"92233720368547758", 0, ErrAmountTooLarge},
	} {
		got, err := ParseDollars(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ParseDollars(%q) = %d, %v; want %d, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestLimitText(t *testing.T) {
	c := int64(20000)
	for _, tc := range []struct {
		cents *int64
		set   bool
		want  string
	}{{&c, true, "$200.00"}, {nil, true, "Unlimited"}, {nil, false, "No limit"}} {
		if got := limitText(tc.cents, tc.set); got != tc.want {
			t.Errorf("limitText(%v, %v) = %q, want %q", tc.cents, tc.set, got, tc.want)
		}
	}
}
