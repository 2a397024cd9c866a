package scimfilter

import (
	"strings"
	"testing"
)

func BenchmarkParseSimple(b *testing.B) {
	for b.Loop() {
		if _, err := Parse(`userName eq "bjensen@example.com"`); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseValuePath(b *testing.B) {
	for b.Loop() {
		if _, err := Parse(`emails[type eq "work" and primary eq true].value eq "x@y.com"`); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLong(b *testing.B) {
	f := strings.Repeat(`id eq "2819c223-7f76-453a-919d-413861904646" or `, 100) + `id pr`
	for b.Loop() {
		if _, err := Parse(f); err != nil {
			b.Fatal(err)
		}
	}
}
