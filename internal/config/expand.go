package config

import (
	"errors"
	"fmt"
	"strings"
)

// expandEnv replaces ${NAME} with the value of the environment variable NAME and
// ${NAME:-default} with that value or, when it is unset or empty, with default. An unset
// variable without a default becomes empty. "$${" stands for a literal "${". Any other "$" is
// kept as it is, so that a password such as "pa$word" needs no escaping.
//
// It runs on each value after the YAML is parsed rather than on the raw text, so that a
// variable's value can never change the structure of the file (a secret holding a quote, a
// colon or a newline stays one value) and line numbers stay those of the file.
func expandEnv(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var sb strings.Builder
	for {
		i := strings.Index(s, "$")
		if i < 0 {
			sb.WriteString(s)
			return sb.String(), nil
		}
		sb.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			sb.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				return "", errors.New("unterminated ${ (write $${ for a literal ${)")
			}
			ref := s[2:end]
			s = s[end+1:]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !validEnvName(name) {
				return "", fmt.Errorf("invalid variable name %q in ${...}", name)
			}
			val, _ := lookup(name)
			if val == "" && hasDef {
				val = def
			}
			sb.WriteString(val)
		default:
			sb.WriteByte('$')
			s = s[1:]
		}
	}
}

// validEnvName accepts the names a POSIX shell accepts.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// varNames lists the environment variables s names in ${...}, in order.
func varNames(s string) []string {
	var names []string
	_, _ = expandEnv(s, func(name string) (string, bool) {
		names = append(names, name)
		return "", false
	})
	return names
}
