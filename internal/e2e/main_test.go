package e2e

import (
	"os"
	"testing"

	"github.com/roster-dev/roster/internal/testldap"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testldap.StopSamba()
	if binPath != "" {
		os.RemoveAll(binPath[:len(binPath)-len("/roster")])
	}
	os.Exit(code)
}
