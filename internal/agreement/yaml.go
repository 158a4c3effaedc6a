package agreement

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a notice period. Its text form is a number of days ("180d")
// or a Go duration ("4320h").
type Duration time.Duration

// ParseDuration reads "<n>d" or a Go duration.
func ParseDuration(s string) (Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want a number of days like \"180d\"", s)
		}
		return Duration(time.Duration(days) * 24 * time.Hour), nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want \"180d\" or a Go duration like \"72h\"", s)
	}
	return Duration(v), nil
}

func (d Duration) String() string {
	if d != 0 && time.Duration(d)%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", time.Duration(d)/(24*time.Hour))
	}
	return time.Duration(d).String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseTime reads a date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time,
// returned in UTC and truncated to the second.
func ParseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want YYYY-MM-DD or RFC 3339", s)
	}
	return t.UTC().Truncate(time.Second), nil
}

// formatTime writes a date for a midnight UTC time, RFC 3339 otherwise.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339)
}

// fields reads a YAML mapping of scalars whose keys must be in allowed.
// Custom unmarshalers lose the decoder's KnownFields, so this keeps the
// same strictness for the types that carry times.
func fields(n *yaml.Node, what string, allowed ...string) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: %s must be a mapping", n.Line, what)
	}
	out := make(map[string]string, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		known := false
		for _, a := range allowed {
			if k.Value == a {
				known = true
			}
		}
		if !known {
			return nil, fmt.Errorf("line %d: field %s not found in %s (want %s)", k.Line, k.Value, what, strings.Join(allowed, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("line %d: %s.%s given twice", k.Line, what, k.Value)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: %s.%s must be a scalar", v.Line, what, k.Value)
		}
		if v.Tag == "!!null" {
			out[k.Value] = ""
			continue
		}
		out[k.Value] = v.Value
	}
	return out, nil
}

func timeField(m map[string]string, key, what string) (time.Time, error) {
	s := m[key]
	if s == "" {
		return time.Time{}, nil
	}
	t, err := ParseTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s.%s: %w", what, key, err)
	}
	return t, nil
}

// UnmarshalYAML reads effective, expiry and notice.
func (t *Term) UnmarshalYAML(n *yaml.Node) error {
	m, err := fields(n, "term", "effective", "expiry", "notice")
	if err != nil {
		return err
	}
	var v Term
	if v.Effective, err = timeField(m, "effective", "term"); err != nil {
		return err
	}
	if v.Expiry, err = timeField(m, "expiry", "term"); err != nil {
		return err
	}
	if s := m["notice"]; s != "" {
		if v.Notice, err = ParseDuration(s); err != nil {
			return fmt.Errorf("term.notice: %w", err)
		}
	}
	*t = v
	return nil
}

// MarshalYAML writes dates as YYYY-MM-DD where they are midnight UTC.
func (t Term) MarshalYAML() (any, error) {
	return struct {
		Effective string `yaml:"effective"`
		Expiry    string `yaml:"expiry"`
		Notice    string `yaml:"notice"`
	}{formatTime(t.Effective), formatTime(t.Expiry), t.Notice.String()}, nil
}

// UnmarshalYAML reads one approval.
func (a *Approval) UnmarshalYAML(n *yaml.Node) error {
	m, err := fields(n, "approval", "party", "authority", "method", "date", "reference")
	if err != nil {
		return err
	}
	v := Approval{Party: m["party"], Authority: m["authority"], Method: m["method"], Reference: m["reference"]}
	if v.Date, err = timeField(m, "date", "approval"); err != nil {
		return err
	}
	*a = v
	return nil
}

// MarshalYAML writes one approval.
func (a Approval) MarshalYAML() (any, error) {
	return struct {
		Party     string `yaml:"party"`
		Authority string `yaml:"authority"`
		Method    string `yaml:"method"`
		Date      string `yaml:"date"`
		Reference string `yaml:"reference,omitempty"`
	}{a.Party, a.Authority, a.Method, formatTime(a.Date), a.Reference}, nil
}

// UnmarshalYAML reads one notice.
func (x *Notice) UnmarshalYAML(n *yaml.Node) error {
	m, err := fields(n, "notice", "kind", "party", "date", "signature")
	if err != nil {
		return err
	}
	v := Notice{Kind: m["kind"], Party: m["party"], Signature: m["signature"]}
	if v.Date, err = timeField(m, "date", "notice"); err != nil {
		return err
	}
	*x = v
	return nil
}

// MarshalYAML writes one notice.
func (x Notice) MarshalYAML() (any, error) {
	return struct {
		Kind      string `yaml:"kind"`
		Party     string `yaml:"party"`
		Date      string `yaml:"date"`
		Signature string `yaml:"signature"`
	}{x.Kind, x.Party, formatTime(x.Date), x.Signature}, nil
}
