package config

import (
	"strings"
	"testing"

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
	for _, tc := range []struct {
		val     string
		want    bool
		wantErr bool
	}{{"true", true, false}, {"1", true, false}, {"false", false, false}, {"yes please", false, true}} {
		c := Default()
		c.LoadEnv(func(k string) (string, bool) {
			if k == "ROSTER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS" {
				return tc.val, true
			}
			return "", false
		})
		if c.Webhooks.AllowPrivateNetworks != tc.want {
			t.Errorf("%q: allow_private_networks = %v, want %v", tc.val, c.Webhooks.AllowPrivateNetworks, tc.want)
		}
		err := c.Validate()
		if gotErr := err != nil && strings.Contains(err.Error(), "ROSTER_WEBHOOKS_ALLOW_PRIVATE_NETWORKS"); gotErr != tc.wantErr {
			t.Errorf("%q: Validate() = %v, want an error naming the variable: %v", tc.val, err, tc.wantErr)
		}
	}
}
