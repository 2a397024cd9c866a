package scim

import (
	"net/http"
	"slices"
	"strings"

	"github.com/roster-dev/roster/connectors/scim/patch"
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

// attrJSON renders an attribute definition as RFC 7643 §7 describes it.
func attrJSON(a patch.Attribute) map[string]any {
	m := map[string]any{
		"name": a.Name, "type": a.Type.String(), "multiValued": a.MultiValued, "required": a.Required,
		"caseExact": a.CaseExact, "mutability": a.Mutability.String(), "returned": a.Returned.String(),
		"uniqueness": a.Uniqueness.String(), "description": a.Name,
	}
	if len(a.ReferenceTypes) > 0 {
		m["referenceTypes"] = a.ReferenceTypes
	}
	if len(a.Sub) > 0 {
		sub := make([]map[string]any, len(a.Sub))
		for i, sa := range a.Sub {
			sub[i] = attrJSON(sa)
		}
		m["subAttributes"] = sub
	}
	return m
}

// attrsJSON renders a schema's attributes, without the common ones no
// schema defines (RFC 7643 §3.1).
func attrsJSON(attrs []patch.Attribute) []map[string]any {
	out := make([]map[string]any, 0, len(attrs))
	for _, a := range attrs {
		if slices.Contains(patch.Common, a.Name) {
			continue
		}
		out = append(out, attrJSON(a))
	}
	return out
}

func schemaDoc(base, id, name string, attrs []patch.Attribute) map[string]any {
	return map[string]any{
		"schemas": []string{URNSchema}, "id": id, "name": name, "description": name, "attributes": attrsJSON(attrs),
		"meta": map[string]any{"resourceType": "Schema", "location": base + "/" + id},
	}
}

// The published schemas are the definitions the validator and PATCH use.
func userSchema(base string) map[string]any {
	return schemaDoc(base, URNUser, "User", patch.UserSchema.Attributes)
}

func enterpriseSchema(base string) map[string]any {
	return schemaDoc(base, URNEnterprise, "EnterpriseUser", patch.UserSchema.Extension(URNEnterprise).Attributes)
}

func groupSchema(base string) map[string]any {
	return schemaDoc(base, URNGroup, "Group", patch.GroupSchema.Attributes)
}
