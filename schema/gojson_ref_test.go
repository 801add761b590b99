package schema

import "strconv"

// runGoJSON decodes every kind with go-json, as runTokens does for a send and the kinds of KindsV2:
// the reference the scanner is compared with.
func runGoJSON(kind Kind, data []byte, dst target) error {
	return runTokens(kind, data, dst != target{}, func(p *tokParser) bool {
		switch kind {
		case KindTrack:
			t := dst.track
			if t == nil {
				t = new(Track)
			}
			return p.track(t)
		case KindWorkflow:
			w := dst.workflow
			if w == nil {
				w = new(Workflow)
			}
			return p.workflow(nil, w)
		default:
			return p.body(kind, dst)
		}
	})
}

func (p *tokParser) track(t *Track) bool {
	var seen fields
	ok := p.object(func(k tokKey) bool {
		switch {
		case p.keyIs(k, "eventName"):
			if !p.first(&seen, fEventName, nil, "eventName") {
				return p.value()
			}
			return p.requiredString(nil, "eventName", &t.EventName)
		case p.keyIs(k, "properties"):
			if !p.first(&seen, fProperties, nil, "properties") {
				return p.value()
			}
			return p.anyObjectInto(nil, "properties", &t.Properties)
		case p.keyIs(k, "workflows"):
			if !p.first(&seen, fWorkflows, nil, "workflows") {
				return p.value()
			}
			return p.workflows(&t.Workflows)
		case p.keyIs(k, "idempotencyKey"):
			if !p.first(&seen, fIdempotencyKey, nil, "idempotencyKey") {
				return p.value()
			}
			return p.idempotencyKey(&t.IdempotencyKey)
		case p.keyIs(k, "occurredAt"):
			if !p.first(&seen, fOccurredAt, nil, "occurredAt") {
				return p.value()
			}
			return p.dateTime(nil, "occurredAt", &t.OccurredAt)
		default:
			return p.value()
		}
	})
	if ok {
		p.requireAll(seen, nil, "eventName", "properties")
	}
	return ok
}

func (p *tokParser) idempotencyKey(dst *string) bool {
	const field = "idempotencyKey"
	if p.peek() != '"' {
		p.problem(nil, field, msgString)
		return p.value()
	}
	v, esc, ok := p.str()
	if !ok {
		return false
	}
	if esc {
		v = []byte(stringOf(v, esc))
	}
	switch {
	case len(v) == 0:
		p.problem(nil, field, msgEmpty)
	case !printableASCII(v):
		p.problem(nil, field, "must contain only printable ASCII characters")
	case len(v) > MaxIdempotencyKeyLen:
		p.problem(nil, field, "must be at most "+strconv.Itoa(MaxIdempotencyKeyLen)+" bytes")
	default:
		if p.build {
			*dst = string(v)
		}
	}
	return true
}

func (p *tokParser) workflows(dst *[]Workflow) bool {
	if p.peek() != '[' {
		p.problem(nil, "workflows", msgArray)
		return p.value()
	}
	at := path{field: "workflows"}
	return p.array(func(i int) bool {
		el := path{parent: &at, index: i}
		var w Workflow
		if !p.workflow(&el, &w) {
			return false
		}
		if p.build {
			*dst = append(*dst, w)
		}
		return true
	})
}

func (p *tokParser) workflow(at *path, w *Workflow) bool {
	if p.peek() != '{' {
		p.problem(at, "", msgObject)
		return p.value()
	}
	var seen fields
	ok := p.object(func(k tokKey) bool {
		switch {
		case p.keyIs(k, "campaignId"):
			if !p.first(&seen, fCampaignID, at, "campaignId") {
				return p.value()
			}
			return p.requiredString(at, "campaignId", &w.CampaignID)
		case p.keyIs(k, "recipients"):
			if !p.first(&seen, fRecipients, at, "recipients") {
				return p.value()
			}
			return p.recipients(at, &w.Recipients)
		default:
			return p.value()
		}
	})
	if ok {
		p.requireAll(seen, at, "campaignId", "recipients")
	}
	return ok
}

func (p *tokParser) anyObjectInto(at *path, field string, dst *map[string]any) bool {
	if p.peek() != '{' {
		p.problem(at, field, msgObject)
		return p.value()
	}
	v, ok := p.raw()
	if ok && p.build {
		*dst, _ = decodeObject(v)
	}
	return ok
}
