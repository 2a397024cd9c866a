package ldap

import "testing"

func TestNormDNFastPathAgrees(t *testing.T) {
	for _, dn := range []string{
		"CN=Alice Smith,OU=People,DC=example,DC=com",
		"cn=alice smith, ou=people , dc=example,dc=com",
		"uid=u000001,ou=people,ou=roster,dc=example,dc=com",
		"CN=Smith\\, Alice,OU=People,DC=example,DC=com",
		"cn=a+sn=b,dc=x",
	} {
		slow := ""
		if d, ok := simpleDN(dn); ok {
			// compare with the parser's answer
			save := d
			slow = normDNSlow(dn)
			if save != slow {
				t.Errorf("%q: fast %q, slow %q", dn, save, slow)
			}
		}
	}
	if normDN("CN=Alice,DC=X") != normDN("cn=alice, dc=x") {
		t.Error("case/space variants differ")
	}
	if normDN(`CN=Smith\, Alice,DC=X`) == normDN("CN=Smith,CN=Alice,DC=X") {
		t.Error("escaped comma collides")
	}
}
