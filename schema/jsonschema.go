package schema

import (
	"embed"
	"io/fs"
)

//go:embed jsonschema/*.schema.json
var embedded embed.FS

// Schemas holds the JSON Schema documents (draft 2020-12) of the bodies of AllKinds, named
// <kind>.schema.json, for producers written in other languages and for tools. Each document is
// self-contained (its $defs are copied, not referenced across files), so it can be used alone.
// They agree with the decoders of this package, which tests check on a corpus and by fuzzing;
// the decoders are stricter in what a schema cannot express: the size limit, UTF-8 validity, the
// nesting limit and duplicate keys.
var Schemas fs.FS = mustSub(embedded, "jsonschema")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		// fs.Sub only fails for an invalid path, which is a constant here.
		panic(err)
	}
	return sub
}

// JSONSchema returns the JSON Schema document for the body of kind, or nil for an unknown kind.
// The slice is a copy the caller may keep or change.
func JSONSchema(kind Kind) []byte {
	if !kind.Known() {
		return nil
	}
	doc, err := fs.ReadFile(Schemas, string(kind)+".schema.json")
	if err != nil {
		// Every kind has a file: a test reads them all.
		return nil
	}
	return doc
}
