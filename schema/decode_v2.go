package schema

import "time"

// The kinds of KindsV2 are decoded with go-json (tokParser), in the order of checks and with the
// reason codes of every kind (see decode.go): size, JSON, secrets, then every problem of the
// fields with its path. Their known fields are listed in a table (knownField), read by
// knownObject, which also reports duplicates and missing required fields.

// DecodeIdentify decodes and validates the body of an identify message.
func DecodeIdentify(data []byte) (*Identify, error) {
	m := new(Identify)
	if err := run(KindIdentify, data, target{identify: m}); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeDetach decodes and validates the body of a detach message.
func DecodeDetach(data []byte) (*Detach, error) {
	m := new(Detach)
	if err := run(KindDetach, data, target{detach: m}); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeSubscribe decodes and validates the body of a subscribe message.
func DecodeSubscribe(data []byte) (*Subscribe, error) {
	m := new(Subscribe)
	if err := run(KindSubscribe, data, target{subscribe: m}); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeUnsubscribe decodes and validates the body of an unsubscribe message.
func DecodeUnsubscribe(data []byte) (*Unsubscribe, error) {
	m := new(Unsubscribe)
	if err := run(KindUnsubscribe, data, target{unsubscribe: m}); err != nil {
		return nil, err
	}
	return m, nil
}

// knownField is a known field of an object: its name, whether the object requires it, and read,
// which consumes its value, the object being at.
type knownField struct {
	name     string
	required bool
	read     func(at *path, name string) bool
}

// knownObject consumes the value at, which must be an object (a problem at at otherwise), reading
// the known fields with their read functions and every other key with other (nil: the value is
// skipped). A known field given twice, or a required field missing, is a problem.
func (p *tokParser) knownObject(at *path, known []knownField, other func(k tokKey) bool) bool {
	if p.peek() != '{' {
		p.problem(at, "", msgObject)
		return p.value()
	}
	var seen fields
	ok := p.object(func(k tokKey) bool {
		for i, f := range known {
			if !p.keyIs(k, f.name) {
				continue
			}
			if !p.first(&seen, 1<<i, at, f.name) {
				return p.value()
			}
			return f.read(at, f.name)
		}
		if other == nil {
			return p.value()
		}
		return other(k)
	})
	if ok {
		for i, f := range known {
			if f.required && seen&(1<<i) == 0 {
				p.problem(at, f.name, msgRequired)
			}
		}
	}
	return ok
}

// stringField reads a required non-empty string into dst.
func (p *tokParser) stringField(dst *string) func(at *path, name string) bool {
	return func(at *path, name string) bool { return p.requiredString(at, name, dst) }
}

// identityField reads an Identity object into dst.
func (p *tokParser) identityField(dst *Identity) func(at *path, name string) bool {
	return func(at *path, name string) bool {
		return p.knownObject(&path{parent: at, field: name}, []knownField{
			{"type", true, p.stringField(&dst.Type)},
			{"identifier", true, p.stringField(&dst.Identifier)},
		}, nil)
	}
}

func (p *tokParser) identify(m *Identify) bool {
	return p.knownObject(nil, []knownField{
		{"environmentId", true, p.stringField(&m.EnvironmentID)},
		{"subjectA", true, p.identityField(&m.SubjectA)},
		{"subjectB", true, p.identityField(&m.SubjectB)},
		{"consentBasis", true, p.stringField(&m.ConsentBasis)},
		{"expiresAt", false, func(at *path, name string) bool { return p.dateTime(at, name, &m.ExpiresAt) }},
	}, nil)
}

func (p *tokParser) detach(m *Detach) bool {
	return p.knownObject(nil, []knownField{
		{"environmentId", true, p.stringField(&m.EnvironmentID)},
		{"subject", true, p.identityField(&m.Subject)},
	}, nil)
}

func (p *tokParser) subscribe(m *Subscribe) bool {
	return p.knownObject(nil, []knownField{
		{"resourceId", true, p.stringField(&m.ResourceID)},
		{"subscriberId", true, p.stringField(&m.SubscriberID)},
	}, func(k tokKey) bool { return p.extraInto(k, &m.Meta) })
}

func (p *tokParser) unsubscribe(m *Unsubscribe) bool {
	return p.knownObject(nil, []knownField{
		{"resourceId", true, p.stringField(&m.ResourceID)},
		{"subscriberId", true, p.stringField(&m.SubscriberID)},
	}, nil)
}

// dateTime consumes a value that must be a date-time string (parseDateTime) and stores it in dst.
func (p *tokParser) dateTime(at *path, field string, dst *time.Time) bool {
	if p.peek() != '"' {
		p.problem(at, field, msgString)
		return p.value()
	}
	v, esc, ok := p.str()
	if !ok {
		return false
	}
	if esc {
		v = []byte(stringOf(v, esc))
	}
	t, ok := parseDateTime(v)
	if !ok {
		p.problem(at, field, msgDateTime)
		return true
	}
	if p.build {
		*dst = t
	}
	return true
}
