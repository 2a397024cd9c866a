package scim

import (
	"net/http"
	"strings"
)

func (s *Server) discovery(r *http.Request, dir *dirEntry, resource, id string) (result, *scimError) {
	base := strings.TrimSuffix(s.location(r, dir.dir.ID, resource, ""), "/")
	switch resource {
	case "ServiceProviderConfig":
		return result{status: http.StatusOK, body: map[string]any{
			"schemas":          []string{URNSPConfig},
			"documentationUri": "https://github.com/roster-dev/roster#scim",
			"patch":            map[string]any{"supported": true},
			"bulk":             map[string]any{"supported": true, "maxOperations": s.opt.BulkMaxOperations, "maxPayloadSize": s.opt.MaxBodyBytes},
			"filter":           map[string]any{"supported": true, "maxResults": MaxResults},
			"changePassword":   map[string]any{"supported": false},
			"sort":             map[string]any{"supported": false},
			"etag":             map[string]any{"supported": true},
			"authenticationSchemes": []any{map[string]any{
				"type": "oauthbearertoken", "name": "OAuth Bearer Token", "primary": true,
				"description": "The directory's bearer token, issued by roster's admin API.",
			}},
			"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": base},
		}}, nil
	case "ResourceTypes":
		types := []map[string]any{
			{"schemas": []string{URNResourceTyp}, "id": "User", "name": "User", "endpoint": "/Users", "description": "User Account",
				"schema": URNUser, "schemaExtensions": []any{map[string]any{"schema": URNEnterprise, "required": false}},
				"meta": map[string]any{"resourceType": "ResourceType", "location": base + "/User"}},
			{"schemas": []string{URNResourceTyp}, "id": "Group", "name": "Group", "endpoint": "/Groups", "description": "Group",
				"schema": URNGroup, "meta": map[string]any{"resourceType": "ResourceType", "location": base + "/Group"}},
		}
		return listOrOne(types, id, "ResourceType")
	default:
		schemas := []map[string]any{userSchema(base), enterpriseSchema(base), groupSchema(base)}
		return listOrOne(schemas, id, "Schema")
	}
}

func listOrOne(items []map[string]any, id, what string) (result, *scimError) {
	if id != "" {
		for _, it := range items {
			if strings.EqualFold(it["id"].(string), id) {
				return result{status: http.StatusOK, body: it}, nil
			}
		}
		return result{}, errf(http.StatusNotFound, "", "no %s %q", what, id)
	}
	res := make([]any, len(items))
	for i, it := range items {
		res[i] = it
	}
	return result{status: http.StatusOK, body: map[string]any{
		"schemas": []string{URNListResp}, "totalResults": len(items), "startIndex": 1, "itemsPerPage": len(items), "Resources": res,
	}}, nil
}

func attr(name, typ string, multi, required bool, mutability, returned, uniqueness string, caseExact bool, sub ...map[string]any) map[string]any {
	a := map[string]any{
		"name": name, "type": typ, "multiValued": multi, "required": required, "caseExact": caseExact,
		"mutability": mutability, "returned": returned, "uniqueness": uniqueness, "description": name,
	}
	if len(sub) > 0 {
		a["subAttributes"] = sub
	}
	return a
}

func rw(name, typ string) map[string]any {
	return attr(name, typ, false, false, "readWrite", "default", "none", false)
}

func schemaDoc(base, id, name string, attrs []map[string]any) map[string]any {
	return map[string]any{
		"schemas": []string{URNSchema}, "id": id, "name": name, "description": name, "attributes": attrs,
		"meta": map[string]any{"resourceType": "Schema", "location": base + "/" + id},
	}
}

func userSchema(base string) map[string]any {
	multi := func(name string) map[string]any {
		return attr(name, "complex", true, false, "readWrite", "default", "none", false,
			rw("value", "string"), rw("display", "string"), rw("type", "string"), rw("primary", "boolean"))
	}
	return schemaDoc(base, URNUser, "User", []map[string]any{
		attr("userName", "string", false, true, "readWrite", "default", "server", false),
		attr("name", "complex", false, false, "readWrite", "default", "none", false,
			rw("formatted", "string"), rw("familyName", "string"), rw("givenName", "string"), rw("middleName", "string"),
			rw("honorificPrefix", "string"), rw("honorificSuffix", "string")),
		rw("displayName", "string"), rw("nickName", "string"), rw("profileUrl", "reference"), rw("title", "string"),
		rw("userType", "string"), rw("preferredLanguage", "string"), rw("locale", "string"), rw("timezone", "string"),
		rw("active", "boolean"),
		attr("password", "string", false, false, "writeOnly", "never", "none", false),
		multi("emails"), multi("phoneNumbers"), multi("ims"), multi("photos"),
		attr("addresses", "complex", true, false, "readWrite", "default", "none", false,
			rw("formatted", "string"), rw("streetAddress", "string"), rw("locality", "string"), rw("region", "string"),
			rw("postalCode", "string"), rw("country", "string"), rw("type", "string"), rw("primary", "boolean")),
		attr("groups", "complex", true, false, "readOnly", "default", "none", false,
			attr("value", "string", false, false, "readOnly", "default", "none", true),
			attr("$ref", "reference", false, false, "readOnly", "default", "none", false),
			attr("display", "string", false, false, "readOnly", "default", "none", false),
			attr("type", "string", false, false, "readOnly", "default", "none", false)),
		multi("entitlements"), multi("roles"), multi("x509Certificates"),
		attr("externalId", "string", false, false, "readWrite", "default", "none", true),
	})
}

func enterpriseSchema(base string) map[string]any {
	return schemaDoc(base, URNEnterprise, "EnterpriseUser", []map[string]any{
		rw("employeeNumber", "string"), rw("costCenter", "string"), rw("organization", "string"),
		rw("division", "string"), rw("department", "string"),
		attr("manager", "complex", false, false, "readWrite", "default", "none", false,
			attr("value", "string", false, false, "readWrite", "default", "none", true),
			attr("$ref", "reference", false, false, "readWrite", "default", "none", false),
			attr("displayName", "string", false, false, "readOnly", "default", "none", false)),
	})
}

func groupSchema(base string) map[string]any {
	return schemaDoc(base, URNGroup, "Group", []map[string]any{
		attr("displayName", "string", false, true, "readWrite", "default", "server", false),
		attr("members", "complex", true, false, "readWrite", "default", "none", false,
			attr("value", "string", false, false, "immutable", "default", "none", true),
			attr("$ref", "reference", false, false, "immutable", "default", "none", false),
			attr("type", "string", false, false, "immutable", "default", "none", false)),
		attr("externalId", "string", false, false, "readWrite", "default", "none", true),
	})
}
