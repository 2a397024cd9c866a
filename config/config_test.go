package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExampleConfigIsTheDefault(t *testing.T) {
	c := Default()
	if err := c.LoadFile("../configs/roster.example.yaml"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), c); diff != "" {
		t.Fatalf("the example config differs from the defaults (-default +example):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownKeyIsAnError(t *testing.T) {
	c := Default()
	err := c.LoadFile("testdata/unknown-key.yaml")
	if err == nil || !strings.Contains(err.Error(), "lisen") {
		t.Fatalf("err = %v, want it to name the unknown key", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	if err := c.LoadFile("testdata/bad-values.yaml"); err != nil {
		t.Fatal(err)
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"listen", "database_url", "role", "log_level", "full_every"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestPrecedence(t *testing.T) {
	c := Default()
	if err := c.LoadFile("testdata/good.yaml"); err != nil {
		t.Fatal(err)
	}
	c.LoadEnv(func(k string) (string, bool) {
		if k == "ROSTER_LISTEN" {
			return "0.0.0.0:9999", true
		}
		return "", false
	})
	if c.Listen != "0.0.0.0:9999" {
		t.Fatalf("env should win over the file: listen = %s", c.Listen)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("MY_TOKEN", "abcdefghijklmnopqrstuvwxyz")
	dir := t.TempDir()
	path := dir + "/c.yaml"
	writeFile(t, path, "admin_token: ${MY_TOKEN}\n")
	c := Default()
	if err := c.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if c.AdminToken != "abcdefghijklmnopqrstuvwxyz" {
		t.Fatalf("admin_token = %q", c.AdminToken)
	}
	writeFile(t, path, "admin_token: ${NOT_SET_ANYWHERE}\n")
	if err := c.LoadFile(path); err == nil || !strings.Contains(err.Error(), "NOT_SET_ANYWHERE") {
		t.Fatalf("missing variable: err = %v", err)
	}
}

func TestWebhooksPrivateNetworksFromEnv(t *testing.T) {
	testSwitchFromEnv(t, "ROSTER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", func(c *Config) bool { return c.Webhooks.AllowPrivateNetworks })
}

func TestMetricsPerDirectoryFromEnv(t *testing.T) {
	if Default().Metrics.PerDirectory {
		t.Fatal("metrics.per_directory is on by default")
	}
	testSwitchFromEnv(t, "ROSTER_METRICS_PER_DIRECTORY", func(c *Config) bool { return c.Metrics.PerDirectory })
}

func TestMetricsRefreshIntervalBounds(t *testing.T) {
	for _, tc := range []struct {
		d  time.Duration
		ok bool
	}{{time.Millisecond, false}, {100 * time.Millisecond, true}, {10 * time.Second, true}, {time.Hour, false}} {
		c := Default()
		c.Metrics.RefreshInterval.Duration = tc.d
		err := c.Validate()
		if (err == nil) != tc.ok || err != nil && !strings.Contains(err.Error(), "metrics.refresh_interval") {
			t.Errorf("refresh_interval %v: Validate() = %v, want ok %v", tc.d, err, tc.ok)
		}
	}
}

// testSwitchFromEnv checks that a boolean variable sets its switch and that
// a value that is not a boolean is reported by name.
func testSwitchFromEnv(t *testing.T, name string, get func(*Config) bool) {
	t.Helper()
	for _, tc := range []struct {
		val     string
		want    bool
		wantErr bool
	}{{"true", true, false}, {"1", true, false}, {"false", false, false}, {"yes please", false, true}} {
		c := Default()
		c.LoadEnv(func(k string) (string, bool) {
			if k == name {
				return tc.val, true
			}
			return "", false
		})
		if got := get(&c); got != tc.want {
			t.Errorf("%s=%q: switch = %v, want %v", name, tc.val, got, tc.want)
		}
		err := c.Validate()
		if gotErr := err != nil && strings.Contains(err.Error(), name); gotErr != tc.wantErr {
			t.Errorf("%q: Validate() = %v, want an error naming the variable: %v", tc.val, err, tc.wantErr)
		}
	}
}
