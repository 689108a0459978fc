package event

import (
	"errors"
	"strconv"
	"strings"
)

// AmountScale is how many units of RevenueAmount make one unit of a
// currency: amounts are kept in millionths.
const AmountScale = 1_000_000

// MaxAmount bounds a revenue amount in currency units, far above any one
// purchase and far below where sums of millionths overflow.
const MaxAmount = 1_000_000_000

// ParseAmount reads a non-negative decimal amount ("49", "49.90", "0.5")
// into millionths, exactly: it never goes through a float. More than six
// decimals, signs, exponents and amounts above MaxAmount are errors.
func ParseAmount(s string) (int64, error) {
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || len(whole) > 10 || len(frac) > 6 || hasFrac && frac == "" || !digits(whole) || !digits(frac) {
		return 0, errors.New("the amount must be a decimal number with at most 6 decimals, like 49.90")
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	if w > MaxAmount {
		return 0, errors.New("the amount is too large")
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	amount := w*AmountScale + f
	if amount > MaxAmount*AmountScale {
		return 0, errors.New("the amount is too large")
	}
	return amount, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatAmount writes millionths as a decimal with at least two decimals
// ("49.90", "0.125"), the inverse of ParseAmount.
func FormatAmount(m int64) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	frac := strings.TrimRight(strconv.FormatInt(AmountScale+m%AmountScale, 10)[1:], "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return sign + strconv.FormatInt(m/AmountScale, 10) + "." + frac
}

// ValidCurrency reports whether c is an ISO 4217 code: three upper-case
// letters.
func ValidCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return false
		}
	}
	return true
}
