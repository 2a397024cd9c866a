package scim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

var bulkRef = regexp.MustCompile(`bulkId:([A-Za-z0-9._~\-]+)`)

type bulkOp struct {
	Method  string          `json:"method"`
	BulkID  string          `json:"bulkId"`
	Version string          `json:"version"`
	Path    string          `json:"path"`
	Data    json.RawMessage `json:"data"`
}

// bulk runs a Bulk request (RFC 7644 §3.7). Operations run in order, each
// in its own transaction; an operation whose data refers to a bulkId not
// yet created waits until that operation ran, so a group may list users
// created later in the same request.
func (s *Server) bulk(r *http.Request, dir *dirEntry, body []byte) (result, *scimError) {
	var req struct {
		Schemas      []string `json:"schemas"`
		FailOnErrors int      `json:"failOnErrors"`
		Operations   []bulkOp `json:"Operations"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return result{}, errf(http.StatusBadRequest, "invalidSyntax", "Bulk request is not valid JSON: %v", err)
	}
	if len(req.Operations) > s.opt.BulkMaxOperations {
		return result{}, errf(http.StatusRequestEntityTooLarge, "tooMany", "Bulk request has %d operations; the maximum is %d", len(req.Operations), s.opt.BulkMaxOperations)
	}
	resolved := map[string]string{}
	out := make([]map[string]any, len(req.Operations))
	done := make([]bool, len(req.Operations))
	errorsSeen := 0
	remaining := len(req.Operations)
	stop := false
	for remaining > 0 && !stop {
		progress := false
		for i, op := range req.Operations {
			if done[i] || stop {
				continue
			}
			raw := op.Path + "\x00" + string(op.Data)
			ready := true
			for _, m := range bulkRef.FindAllStringSubmatch(raw, -1) {
				if _, ok := resolved[m[1]]; !ok {
					ready = false
				}
			}
			if !ready {
				continue
			}
			sub := func(s string) string {
				return bulkRef.ReplaceAllStringFunc(s, func(m string) string { return resolved[strings.TrimPrefix(m, "bulkId:")] })
			}
			res := s.bulkOne(r, dir, op, sub(op.Path), []byte(sub(string(op.Data))))
			if op.BulkID != "" {
				if id, ok := res["_id"].(string); ok {
					resolved[op.BulkID] = id
				}
			}
			delete(res, "_id")
			out[i], done[i] = res, true
			remaining--
			progress = true
			if st, _ := strconv.Atoi(res["status"].(string)); st >= 400 {
				errorsSeen++
				if req.FailOnErrors > 0 && errorsSeen >= req.FailOnErrors {
					stop = true
				}
			}
		}
		if !progress {
			break
		}
	}
	var ops []any
	for i, op := range req.Operations {
		if done[i] {
			ops = append(ops, out[i])
			continue
		}
		if stop {
			continue // not attempted: failOnErrors reached
		}
		ops = append(ops, map[string]any{"method": op.Method, "bulkId": op.BulkID, "status": "409",
			"response": errBody(errf(http.StatusConflict, "invalidValue", "operation refers to a bulkId that no operation in this request created"))})
	}
	if ops == nil {
		ops = []any{}
	}
	return result{status: http.StatusOK, body: map[string]any{"schemas": []string{URNBulkResp}, "Operations": ops}}, nil
}

func (s *Server) bulkOne(r *http.Request, dir *dirEntry, op bulkOp, path string, data []byte) map[string]any {
	method := strings.ToUpper(op.Method)
	entry := map[string]any{"method": method}
	if op.BulkID != "" {
		entry["bulkId"] = op.BulkID
	}
	fail := func(e *scimError) map[string]any {
		entry["status"] = strconv.Itoa(e.Status)
		entry["response"] = errBody(e)
		return entry
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	parts[0] = canonicalResource(parts[0])
	if parts[0] != "Users" && parts[0] != "Groups" || len(parts) > 2 {
		return fail(errf(http.StatusBadRequest, "invalidPath", "bulk path must be /Users, /Groups, /Users/{id} or /Groups/{id}, got %q", path))
	}
	resource, id := parts[0], ""
	if len(parts) == 2 {
		id = parts[1]
	}
	if method == http.MethodPost && op.BulkID == "" {
		return fail(errf(http.StatusBadRequest, "invalidValue", "a bulk POST needs a bulkId"))
	}
	res, serr := s.op(r.Context(), r, dir, method, resource, id, data, nil, op.Version)
	if serr != nil {
		return fail(serr)
	}
	entry["status"] = strconv.Itoa(res.status)
	if res.version != 0 {
		entry["version"] = etag(res.version)
	}
	if m, ok := res.body.(map[string]any); ok {
		if rid, ok := m["id"].(string); ok {
			entry["_id"] = rid
			entry["location"] = s.location(r, dir.dir.ID, resource, rid)
		}
	}
	if id != "" && entry["location"] == nil {
		entry["location"] = s.location(r, dir.dir.ID, resource, id)
	}
	return entry
}
