package e2e

import (
	"bytes"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	promodel "github.com/prometheus/common/model"

	"github.com/roster-dev/roster/config"
)

// scrape is one /metrics answer, parsed by the Prometheus text parser.
type scrape map[string]*dto.MetricFamily

// scrape reads /metrics over HTTP and parses it.
func (r *Roster) scrape() scrape {
	r.T.Helper()
	resp := r.Do("GET", "/metrics", "", nil)
	if resp.Status != 200 {
		r.T.Fatalf("/metrics = %d", resp.Status)
	}
	p := expfmt.NewTextParser(promodel.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(resp.Body))
	if err != nil {
		r.T.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// metric sums the samples of a metric on /metrics whose labels include the
// given name/value pairs. A histogram's name with _count or _sum reads its
// sample count or sum.
func (r *Roster) metric(name string, labels ...string) float64 {
	r.T.Helper()
	return r.scrape().value(name, labels...)
}

// family finds a metric family by name, and what of it a suffixed name
// (_count, _sum) asks for.
func (s scrape) family(name string) (*dto.MetricFamily, string) {
	if mf, ok := s[name]; ok {
		return mf, ""
	}
	for _, suffix := range []string{"_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if mf, ok := s[base]; ok && (mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY) {
				return mf, suffix
			}
		}
	}
	return nil, ""
}

// value sums the samples of name whose labels include the given pairs.
func (s scrape) value(name string, labels ...string) float64 {
	mf, part := s.family(name)
	var sum float64
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels...) {
			continue
		}
		switch {
		case m.Histogram != nil && part == "_count":
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Histogram != nil && part == "_sum":
			sum += m.GetHistogram().GetSampleSum()
		case m.Summary != nil && part == "_count":
			sum += float64(m.GetSummary().GetSampleCount())
		case m.Summary != nil && part == "_sum":
			sum += m.GetSummary().GetSampleSum()
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// series lists the label sets of a metric's samples that include the given
// pairs.
func (s scrape) series(name string, labels ...string) []map[string]string {
	mf, _ := s.family(name)
	var out []map[string]string
	for _, m := range mf.GetMetric() {
		if hasLabels(m, labels...) {
			out = append(out, labelMap(m))
		}
	}
	return out
}

// has reports whether a metric family is on the page.
func (s scrape) has(name string) bool {
	mf, _ := s.family(name)
	return mf != nil
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func hasLabels(m *dto.Metric, labels ...string) bool {
	have := labelMap(m)
	for i := 0; i+1 < len(labels); i += 2 {
		if have[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}

// fastMetrics reads the directory gauges every 50 ms, so that a test sees
// a change on /metrics soon after it happened (10 s by default).
func fastMetrics(c *config.Config) { c.Metrics.RefreshInterval.Duration = 50 * time.Millisecond }

// perDirectoryMetrics is fastMetrics with the per-directory series on.
func perDirectoryMetrics(c *config.Config) {
	fastMetrics(c)
	c.Metrics.PerDirectory = true
}

// waitMetrics scrapes /metrics until cond holds (10 s at most).
func (r *Roster) waitMetrics(what string, cond func(s scrape) (bool, string)) scrape {
	r.T.Helper()
	var s scrape
	Eventually(r.T, 10*time.Second, what, func() (bool, string) {
		s = r.scrape()
		return cond(s)
	})
	return s
}
