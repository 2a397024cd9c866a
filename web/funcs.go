package web

import (
	"html/template"
	"time"
)

var funcs = template.FuncMap{
	"cents":   func(c *int64) string { return limitText(c, true) },
	"dollars": func(c *int64) string { return FormatCents(*c)[1:] },
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return "never"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil || v.IsZero() {
				return "never"
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return ""
	},
	"iso":          func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"typeName":     func(t string) string { return typeNames[t] },
	"prerequisite": prerequisite,
	"val":          func(m map[string]string, k string) string { return m[k] },
	"checked":      func(m map[string]string, k string) bool { return m[k] != "" },
	"ms":           func(f float64) string { return formatMS(f) },
	"plans":        func() []string { return teamPlans },
	"age":          formatAge,
}

// formatAge writes a wait in seconds as a rounded duration ("3s", "4m10s").
func formatAge(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	if d < time.Second {
		return "under a second"
	}
	return d.Round(time.Second).String()
}

// teamPlans are the plans POST /teams accepts.
var teamPlans = []string{"free", "pro", "business", "enterprise"}

func formatMS(f float64) string {
	d := time.Duration(f * float64(time.Millisecond))
	return d.Round(100 * time.Microsecond).String()
}
