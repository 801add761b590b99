package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// MaxSchemaBytes bounds a schema file, and each file it references: a schema is a few
// kilobytes, and a file far larger is the wrong file.
const MaxSchemaBytes = 1 << 20

// compile compiles the JSON Schema in file. The draft is the file's $schema (2020-12 when it
// has none); format is asserted whatever the draft, since a catalog that declares
// "format": "email" means it to be checked. $ref may name other local files (relative to the
// file), read with the same bound; nothing is fetched over the network.
func compile(file string) (*jsonschema.Schema, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	slashed := filepath.ToSlash(abs)
	if !strings.HasPrefix(slashed, "/") {
		slashed = "/" + slashed // a Windows drive
	}
	loc := (&url.URL{Scheme: "file", Path: slashed}).String()

	c := jsonschema.NewCompiler()
	c.UseLoader(fileLoader{})
	c.AssertFormat()
	sch, err := c.Compile(loc)
	if err == nil {
		return sch, nil
	}
	var (
		load    *jsonschema.LoadURLError
		invalid *jsonschema.SchemaValidationError
	)
	switch {
	case errors.As(err, &load) && load.URL == loc:
		return nil, load.Err
	case errors.As(err, &load):
		return nil, fmt.Errorf("its reference %s: %w", fileName(load.URL), load.Err)
	case errors.As(err, &invalid):
		return nil, fmt.Errorf("not a valid JSON Schema: %s", metaProblems(invalid.Err))
	default:
		return nil, fmt.Errorf("not a valid JSON Schema: %s", oneLine(err))
	}
}

// fileLoader reads the files a schema names, with the bound of MaxSchemaBytes.
type fileLoader struct{}

func (fileLoader) Load(loc string) (any, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "file" {
		return nil, errors.New("only local files can be referenced: the bridge fetches nothing over the network")
	}
	path, err := jsonschema.FileLoader{}.ToFile(loc)
	if err != nil {
		return nil, err
	}
	return readSchema(path)
}

// readSchema reads and parses one schema file, saying in its errors what is wrong with it
// without repeating its name.
func readSchema(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileError(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSchemaBytes+1))
	if err != nil {
		return nil, fileError(err)
	}
	if len(data) > MaxSchemaBytes {
		return nil, fmt.Errorf("is larger than %d bytes (1 MiB), the most a schema file may hold", MaxSchemaBytes)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, notJSON(data, err)
	}
	return doc, nil
}

// fileError says why a file cannot be read, without its path (the caller names it).
func fileError(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return errors.New("file not found")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read the file: %w", pe.Err)
	}
	return fmt.Errorf("cannot read the file: %w", err)
}

// notJSON says where data stops being JSON.
func notJSON(data []byte, err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF) && len(bytes.TrimSpace(data)) == 0:
		return errors.New("not JSON: the file is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not JSON: the file ends inside a value")
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset)
		return fmt.Errorf("not JSON: line %d, column %d: %v", line, col, syntax)
	}
	return fmt.Errorf("not JSON: %v", err)
}

// position returns the line and column (from 1, in bytes) of the byte before offset, where
// encoding/json reports a syntax error.
func position(data []byte, offset int64) (line, col int) {
	end := min(max(int(offset)-1, 0), len(data))
	before := data[:end]
	line = bytes.Count(before, []byte("\n")) + 1
	col = end - bytes.LastIndexByte(before, '\n')
	return line, col
}

// fileName returns the path of a file URL, or the URL when it is not one.
func fileName(loc string) string {
	if path, err := (jsonschema.FileLoader{}).ToFile(loc); err == nil {
		return path
	}
	return loc
}

// metaProblems writes what the meta-schema found wrong in a schema, one line for all: each
// failure at its place in the file, of an anyOf only the first alternative's (the others say
// the same thing of another type).
func metaProblems(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return oneLine(err)
	}
	var leaves []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		switch {
		case len(e.Causes) == 0:
			leaves = append(leaves, fmt.Sprintf("at %q: %s", "/"+strings.Join(e.InstanceLocation, "/"), e.ErrorKind.LocalizedString(printer)))
		case isAnyOf(e.ErrorKind):
			walk(e.Causes[0])
		default:
			for _, c := range e.Causes {
				walk(c)
			}
		}
	}
	walk(ve)
	return strings.Join(leaves, "; ")
}

func isAnyOf(k jsonschema.ErrorKind) bool {
	_, ok := k.(*kind.AnyOf)
	return ok
}

// printer writes the validator's messages in English, as its Error does.
var printer = message.NewPrinter(language.English)

// oneLine writes the validator's multi-line messages on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n- ", "; ")), " ")
}
