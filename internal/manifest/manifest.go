// Package manifest reads and writes workload manifests: multi-document YAML
// or JSON in (reader.go), the pod template of each workload found
// (workload.go), the hardened documents out as YAML, spliced into the
// source as written where it can be (render.go, splice.go) or rendered in
// the user's key order (output.go).
package manifest
