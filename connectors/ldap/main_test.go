package ldap_test

import (
	"os"
	"testing"

	"github.com/roster-dev/roster/internal/testldap"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testldap.StopSamba()
	os.Exit(code)
}
