package web

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// FormatCents shows integer cents as dollars: 123450 → "$1,234.50".
func FormatCents(c int64) string {
	neg := c < 0
	u := uint64(c)
	if neg {
		u = uint64(-(c + 1)) + 1 // also right for math.MinInt64
	}
	whole := strconv.FormatUint(u/100, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteByte('$')
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	cents := u % 100
	b.WriteByte('.')
	b.WriteByte(byte('0' + cents/10))
	b.WriteByte(byte('0' + cents%10))
	return b.String()
}

// Errors of ParseDollars, shown next to the field.
var (
	ErrAmountEmpty     = errors.New("enter an amount in dollars, like 50 or 12.50")
	ErrAmountNegative  = errors.New("the amount cannot be negative")
	ErrAmountDecimals  = errors.New("use at most two decimals (whole cents)")
	ErrAmountMalformed = errors.New("enter an amount in dollars, like 50, 12.50 or $1,200")
	ErrAmountTooLarge  = errors.New("the amount is too large")
)

// ParseDollars reads an amount of dollars an admin typed ("12", "12.5",
// "12.50", "$1,200") as exact integer cents: digits are read as digits,
// never through a float.
func ParseDollars(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, ErrAmountEmpty
	}
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "$-") || strings.HasPrefix(s, "-$") {
		return 0, ErrAmountNegative
	}
	s = strings.TrimPrefix(s, "$")
	s = strings.TrimSpace(s)
	whole, frac, hasDot := strings.Cut(s, ".")
	if hasDot && frac == "" || whole == "" && frac == "" {
		return 0, ErrAmountMalformed
	}
	if strings.Contains(whole, ",") {
		groups := strings.Split(whole, ",")
		for i, g := range groups {
			if i == 0 && (len(g) < 1 || len(g) > 3) || i > 0 && len(g) != 3 {
				return 0, ErrAmountMalformed
			}
		}
		whole = strings.Join(groups, "")
	}
	if !allDigits(whole) || !allDigits(frac) {
		return 0, ErrAmountMalformed
	}
	if len(frac) > 2 {
		return 0, ErrAmountDecimals
	}
	var cents int64
	for _, d := range whole {
		if cents > (math.MaxInt64-9)/10 {
			return 0, ErrAmountTooLarge
		}
		cents = cents*10 + int64(d-'0')
	}
	if cents > math.MaxInt64/100-1 {
		return 0, ErrAmountTooLarge
	}
	cents *= 100
	frac += strings.Repeat("0", 2-len(frac))
	cents += int64(frac[0]-'0')*10 + int64(frac[1]-'0')
	return cents, nil
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// limitText shows a spend limit: an amount, "Unlimited", or (for a group
// that sets none) "No limit".
func limitText(cents *int64, set bool) string {
	switch {
	case !set:
		return "No limit"
	case cents == nil:
		return "Unlimited"
	}
	return FormatCents(*cents)
}
