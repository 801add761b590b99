package catalog

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// MaxDetail bounds Violation.Detail, in bytes.
const MaxDetail = 512

// undeclaredDetail is the Detail of a violation by an undeclared event.
const undeclaredDetail = "the event is not declared in catalog.events"

// Violation is a track the catalog refuses: its event is not declared, or its properties fail
// the event's schema.
type Violation struct {
	Event      string // the event's name
	Undeclared bool   // the event is not declared; otherwise its properties fail its schema
	// Detail says what is wrong in at most MaxDetail bytes of printable ASCII, for the
	// Notifizz-Dlq-Error header and logs: each failing property by JSON pointer (from the
	// properties object) with the keyword that failed and the schema's constraint, never a
	// property's value, since values may be personal data.
	Detail string
}

// Error returns `event "<Event>": <what is wrong>`.
func (v *Violation) Error() string {
	if v.Undeclared {
		return fmt.Sprintf("event %q: %s", v.Event, v.Detail)
	}
	return fmt.Sprintf("event %q: properties do not match its schema: %s", v.Event, v.Detail)
}

// describe writes a validation error as a Detail: one item per failure, sorted (the validator
// walks maps in random order), as many as fit with a count of the others.
func describe(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return printable(err.Error()) // not from Validate, which returns only these
	}
	var items []string
	collect(ve, &items)
	slices.Sort(items)
	items = slices.Compact(items)
	if len(items) == 0 {
		return "fails its schema"
	}
	return bound(items)
}

// bound joins items with "; " within MaxDetail bytes, ending with "; and N more" when some do
// not fit; a first item too long alone is cut.
func bound(items []string) string {
	if joined := strings.Join(items, "; "); len(joined) <= MaxDetail {
		return joined
	}
	n, length := 0, 0 // the items that fit beside the count of the others, and their length
	for ; n < len(items); n++ {
		next := length + len(items[n])
		if n > 0 {
			next += len("; ")
		}
		if next+len(more(len(items)-n-1)) > MaxDetail {
			break
		}
		length = next
	}
	if n == 0 {
		tail := more(len(items) - 1)
		return items[0][:MaxDetail-len(tail)-len("...")] + "..." + tail
	}
	return strings.Join(items[:n], "; ") + more(len(items)-n)
}

// more counts the items left out.
func more(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; and %d more", n)
}

// collect appends an item for each failure under e: the leaves of the error tree, except that
// a failed anyOf or oneOf is one item (the failures of each of its alternatives would say
// little), and that required and additionalProperties give one item per property.
func collect(e *jsonschema.ValidationError, items *[]string) {
	at := func(tokens ...string) string { return pointer(append(slices.Clip(e.InstanceLocation), tokens...)) }
	add := func(where, format string, args ...any) {
		*items = append(*items, printable(where+": "+fmt.Sprintf(format, args...)))
	}
	switch k := e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.Reference, *kind.AllOf:
		if len(e.Causes) == 0 {
			add(at(), "fails its schema")
		}
		for _, c := range e.Causes {
			collect(c, items)
		}
	case *kind.AnyOf:
		add(at(), "matches none of the alternatives (anyOf)")
	case *kind.OneOf:
		if len(k.Subschemas) < 2 {
			add(at(), "matches none of the alternatives (oneOf)")
		} else {
			add(at(), "matches alternatives %d and %d, must match one (oneOf)", k.Subschemas[0], k.Subschemas[1])
		}
	case *kind.Required:
		for _, name := range k.Missing {
			add(at(name), "is required and missing (required)")
		}
	case *kind.DependentRequired:
		for _, name := range k.Missing {
			add(at(name), "is required when %s is present (dependentRequired)", at(k.Prop))
		}
	case *kind.Dependency:
		for _, name := range k.Missing {
			add(at(name), "is required when %s is present (dependencies)", at(k.Prop))
		}
	case *kind.AdditionalProperties:
		for _, name := range k.Properties {
			add(at(name), "is not allowed (additionalProperties)")
		}
	case *kind.PropertyNames:
		add(at(k.Property), "has a name its schema does not allow (propertyNames)")
	default:
		add(at(), "%s", constraint(e.ErrorKind))
	}
}

// constraint says which constraint of the schema kind failed, from the schema alone: the
// kinds also carry the value (Got), which must not be shown.
func constraint(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return fmt.Sprintf("is %s, must be %s (type)", k.Got, strings.Join(k.Want, " or "))
	case *kind.Enum:
		return "is not one of the allowed values (enum)"
	case *kind.Const:
		return "is not the required value (const)"
	case *kind.Format:
		return fmt.Sprintf("is not a valid %s (format)", k.Want)
	case *kind.MinLength:
		return fmt.Sprintf("must be at least %d characters long (minLength)", k.Want)
	case *kind.MaxLength:
		return fmt.Sprintf("must be at most %d characters long (maxLength)", k.Want)
	case *kind.Pattern:
		return fmt.Sprintf("does not match the pattern %s (pattern)", strconv.Quote(k.Want))
	case *kind.Minimum:
		return fmt.Sprintf("must be >= %s (minimum)", number(k.Want))
	case *kind.Maximum:
		return fmt.Sprintf("must be <= %s (maximum)", number(k.Want))
	case *kind.ExclusiveMinimum:
		return fmt.Sprintf("must be > %s (exclusiveMinimum)", number(k.Want))
	case *kind.ExclusiveMaximum:
		return fmt.Sprintf("must be < %s (exclusiveMaximum)", number(k.Want))
	case *kind.MultipleOf:
		return fmt.Sprintf("must be a multiple of %s (multipleOf)", number(k.Want))
	case *kind.MinItems:
		return fmt.Sprintf("must have at least %d items (minItems)", k.Want)
	case *kind.MaxItems:
		return fmt.Sprintf("must have at most %d items (maxItems)", k.Want)
	case *kind.MinProperties:
		return fmt.Sprintf("must have at least %d properties (minProperties)", k.Want)
	case *kind.MaxProperties:
		return fmt.Sprintf("must have at most %d properties (maxProperties)", k.Want)
	case *kind.UniqueItems:
		return fmt.Sprintf("has equal items at %d and %d (uniqueItems)", k.Duplicates[0], k.Duplicates[1])
	case *kind.AdditionalItems:
		return fmt.Sprintf("has %d items more than allowed (additionalItems)", k.Count)
	case *kind.Contains:
		return "has no item matching its schema (contains)"
	case *kind.MinContains:
		return fmt.Sprintf("must have at least %d items matching its schema (minContains)", k.Want)
	case *kind.MaxContains:
		return fmt.Sprintf("must have at most %d items matching its schema (maxContains)", k.Want)
	case *kind.Not:
		return "matches a schema it must not (not)"
	case *kind.FalseSchema:
		return "is not allowed (false schema)"
	case *kind.ContentEncoding:
		return fmt.Sprintf("is not %s encoded (contentEncoding)", k.Want)
	case *kind.ContentMediaType:
		return fmt.Sprintf("is not valid %s (contentMediaType)", k.Want)
	case *kind.InvalidJsonValue:
		return fmt.Sprintf("holds a Go value of type %T, which is not JSON", k.Value)
	}
	if kw := k.KeywordPath(); len(kw) > 0 {
		return fmt.Sprintf("fails %s", strings.Join(kw, "/"))
	}
	return "fails its schema"
}

// number writes a schema's bound as JSON would.
func number(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// pointer returns the JSON pointer of tokens, "(properties)" for none (the properties object
// itself).
func pointer(tokens []string) string {
	if len(tokens) == 0 {
		return "(properties)"
	}
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// printable escapes what a header or a log line should not hold: control characters, and
// anything outside ASCII (property names are the producer's).
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	return b.String()
}
