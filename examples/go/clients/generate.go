// Package clients holds two Go clients for the Accepted sandbox, generated
// from the committed spec (generated/openapi.json at the repository's root)
// by the generators pinned with the tool directive in go.mod: oapi-codegen
// writes package oapi, ogen writes package ogenapi. cmd/oapi-flow and
// cmd/ogen-flow run the report flow with each.
//
// After the spec changes, run `go generate` in this directory and commit
// what changed. (Not `go generate ./...`: ogen's -clean deletes the files
// it no longer writes while go generate is still reading package ogenapi.)
package clients

//go:generate go tool oapi-codegen -config oapi/config.yaml ../../../generated/openapi.json
//go:generate go tool ogen -config ogenapi/ogen.yml -target ogenapi -package ogenapi -clean -loglevel error ../../../generated/openapi.json
