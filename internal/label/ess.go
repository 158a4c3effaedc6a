package label

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// ACP-145(A) security category syntax OIDs (the SecurityCategory type).
const (
	oidRestrictiveBitmap     = "2.16.840.1.101.2.1.8.3.0"
	oidEnumeratedPermissive  = "2.16.840.1.101.2.1.8.3.1"
	oidPermissiveBitmap      = "2.16.840.1.101.2.1.8.3.2"
	oidInformative           = "2.16.840.1.101.2.1.8.3.3"
	oidEnumeratedRestrictive = "2.16.840.1.101.2.1.8.3.4"
	maxCategories            = 64
	maxLACVBits              = 1 << 16
)

type tlv struct {
	tag  byte
	body []byte
}

// readTLV reads one definite-length BER element with a single-byte tag.
func readTLV(b []byte) (tlv, []byte, error) {
	if len(b) < 2 {
		return tlv{}, nil, errors.New("ess: truncated element")
	}
	t := b[0]
	if t&0x1f == 0x1f {
		return tlv{}, nil, errors.New("ess: multi-byte tags are not supported")
	}
	l := int(b[1])
	b = b[2:]
	if l&0x80 != 0 {
		n := l & 0x7f
		if n == 0 {
			return tlv{}, nil, errors.New("ess: indefinite lengths are not supported")
		}
		if n > 3 || len(b) < n {
			return tlv{}, nil, errors.New("ess: bad length")
		}
		l = 0
		for _, x := range b[:n] {
			l = l<<8 | int(x)
		}
		b = b[n:]
	}
	if l > len(b) {
		return tlv{}, nil, errors.New("ess: element overruns its container")
	}
	return tlv{t, b[:l]}, b[l:], nil
}

// parseOID decodes OID content octets; arcs may exceed 64 bits (2.25.x).
func parseOID(body []byte) (string, error) {
	if len(body) == 0 || len(body) > 127 || body[len(body)-1]&0x80 != 0 {
		return "", errors.New("ess: bad OID")
	}
	var sb strings.Builder
	v := new(big.Int)
	first := true
	for i, b := range body {
		if v.Sign() == 0 && b == 0x80 && (i == 0 || body[i-1]&0x80 == 0) {
			return "", errors.New("ess: OID arc not minimally encoded")
		}
		v.Lsh(v, 7)
		v.Or(v, big.NewInt(int64(b&0x7f)))
		if b&0x80 != 0 {
			continue
		}
		if first {
			first = false
			switch {
			case v.Cmp(big.NewInt(40)) < 0:
				sb.WriteString("0.")
			case v.Cmp(big.NewInt(80)) < 0:
				sb.WriteString("1.")
				v.Sub(v, big.NewInt(40))
			default:
				sb.WriteString("2.")
				v.Sub(v, big.NewInt(80))
			}
			sb.WriteString(v.String())
		} else {
			sb.WriteString(".")
			sb.WriteString(v.String())
		}
		v.SetInt64(0)
	}
	return sb.String(), nil
}

func parseInt(body []byte) (uint64, error) {
	if len(body) == 0 || len(body) > 8 || (len(body) > 1 && (body[0] == 0 && body[1]&0x80 == 0 || body[0] == 0xff && body[1]&0x80 != 0)) {
		return 0, errors.New("ess: bad INTEGER")
	}
	if body[0]&0x80 != 0 {
		return 0, errors.New("ess: negative INTEGER")
	}
	var v uint64
	for _, x := range body {
		v = v<<8 | uint64(x)
	}
	return v, nil
}

// parseESS decodes an ESSSecurityLabel (RFC 2634) in BER or DER; SET
// members may come in any order.
func parseESS(data []byte) (*Label, error) {
	if len(data) > MaxLabelSize {
		return nil, errors.New("ess: label too large")
	}
	set, rest, err := readTLV(data)
	if err != nil {
		return nil, err
	}
	if set.tag != 0x31 || len(rest) != 0 {
		return nil, errors.New("ess: not a single SET")
	}
	l := &Label{Format: "ess", NoClass: true}
	seen := map[byte]bool{}
	b := set.body
	for len(b) > 0 {
		var e tlv
		if e, b, err = readTLV(b); err != nil {
			return nil, err
		}
		k := e.tag
		if k == 0x0c {
			k = 0x13
		}
		if seen[k] {
			return nil, fmt.Errorf("ess: duplicate field with tag 0x%02x", e.tag)
		}
		seen[k] = true
		switch e.tag {
		case 0x06:
			if l.PolicyOID, err = parseOID(e.body); err != nil {
				return nil, err
			}
		case 0x02:
			v, err := parseInt(e.body)
			if err != nil || v > 256 {
				return nil, errors.New("ess: security-classification out of range")
			}
			l.ClassLACV, l.HasClassLACV, l.NoClass = v, true, false
		case 0x13, 0x0c:
			if len(e.body) == 0 || len(e.body) > 128 || !utf8.Valid(e.body) {
				return nil, errors.New("ess: bad privacy-mark")
			}
			l.PrivacyMark = string(e.body)
		case 0x31:
			if l.Categories, err = parseSecurityCategories(e.body); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("ess: unexpected field with tag 0x%02x", e.tag)
		}
	}
	return l, nil
}

func parseSecurityCategories(b []byte) ([]Category, error) {
	var out []Category
	n := 0
	for len(b) > 0 {
		var sc tlv
		var err error
		if sc, b, err = readTLV(b); err != nil {
			return nil, err
		}
		if n++; n > maxCategories {
			return nil, errors.New("ess: too many security categories")
		}
		if sc.tag != 0x30 {
			return nil, errors.New("ess: SecurityCategory is not a SEQUENCE")
		}
		typ, r, err := readTLV(sc.body)
		if err != nil || typ.tag != 0x80 {
			return nil, errors.New("ess: SecurityCategory type is not [0] OID")
		}
		val, r, err := readTLV(r)
		if err != nil || val.tag != 0xa1 || len(r) != 0 {
			return nil, errors.New("ess: SecurityCategory value is not [1]")
		}
		syn, err := parseOID(typ.body)
		if err != nil {
			return nil, err
		}
		inner, r, err := readTLV(val.body)
		if err != nil || inner.tag != 0x30 || len(r) != 0 {
			return nil, errors.New("ess: category value is not a SEQUENCE")
		}
		name, r, err := readTLV(inner.body)
		if err != nil || name.tag != 0x06 {
			return nil, errors.New("ess: category tagName is not an OID")
		}
		setID, err := parseOID(name.body)
		if err != nil {
			return nil, err
		}
		field, r, err := readTLV(r)
		if err != nil || len(r) != 0 {
			return nil, errors.New("ess: bad category attributes")
		}
		var tt TagType
		switch syn {
		case oidRestrictiveBitmap:
			tt = Restrictive
		case oidPermissiveBitmap:
			tt = Permissive
		case oidEnumeratedPermissive:
			tt = EnumPermissive
		case oidEnumeratedRestrictive:
			tt = EnumRestrictive
		case oidInformative:
			tt = Informative
		default:
			return nil, fmt.Errorf("ess: unsupported security category syntax %s", syn)
		}
		lacvs, err := attrValues(field)
		if err != nil {
			return nil, err
		}
		for _, v := range lacvs {
			out = append(out, Category{TagSetID: setID, Type: tt, LACV: v, HasLACV: true})
		}
	}
	return out, nil
}

func attrValues(f tlv) ([]uint64, error) {
	switch f.tag {
	case 0x03: // BIT STRING
		if len(f.body) == 0 || f.body[0] > 7 || len(f.body)*8 > maxLACVBits {
			return nil, errors.New("ess: bad BIT STRING")
		}
		var out []uint64
		bits := f.body[1:]
		for i, x := range bits {
			for j := 0; j < 8; j++ {
				if x&(0x80>>j) != 0 {
					out = append(out, uint64(i*8+j))
				}
			}
		}
		return out, nil
	case 0x31: // SET OF INTEGER
		var out []uint64
		b := f.body
		for len(b) > 0 {
			var e tlv
			var err error
			if e, b, err = readTLV(b); err != nil {
				return nil, err
			}
			if e.tag != 0x02 {
				return nil, errors.New("ess: attribute list member is not an INTEGER")
			}
			v, err := parseInt(e.body)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			if len(out) > maxLACVBits {
				return nil, errors.New("ess: too many attributes")
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("ess: attributes with tag 0x%02x", f.tag)
}

func appendTLV(dst []byte, tag byte, body []byte) []byte {
	dst = append(dst, tag)
	switch n := len(body); {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n < 0x100:
		dst = append(dst, 0x81, byte(n))
	case n < 0x10000:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, body...)
}

// oidBody encodes a dotted OID into content octets.
func oidBody(s string) ([]byte, error) {
	if !validOID(s) {
		return nil, fmt.Errorf("ess: OID %q invalid", s)
	}
	parts := strings.Split(s, ".")
	var arcs []*big.Int
	for _, p := range parts {
		v, _ := new(big.Int).SetString(p, 10)
		arcs = append(arcs, v)
	}
	if arcs[0].Cmp(big.NewInt(2)) > 0 || (arcs[0].Cmp(big.NewInt(2)) < 0 && arcs[1].Cmp(big.NewInt(39)) > 0) {
		return nil, fmt.Errorf("ess: OID %q invalid", s)
	}
	first := new(big.Int).Mul(arcs[0], big.NewInt(40))
	first.Add(first, arcs[1])
	arcs = append([]*big.Int{first}, arcs[2:]...)
	var out []byte
	for _, a := range arcs {
		var chunk []byte
		x := new(big.Int).Set(a)
		for {
			chunk = append([]byte{byte(new(big.Int).And(x, big.NewInt(0x7f)).Int64())}, chunk...)
			x.Rsh(x, 7)
			if x.Sign() == 0 {
				break
			}
		}
		for i := 0; i < len(chunk)-1; i++ {
			chunk[i] |= 0x80
		}
		out = append(out, chunk...)
	}
	return out, nil
}

func intBody(v uint64) []byte {
	var b []byte
	for {
		b = append([]byte{byte(v)}, b...)
		v >>= 8
		if v == 0 {
			break
		}
	}
	if b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// MarshalESS encodes the label as a DER ESSSecurityLabel, categories as
// ACP-145(A) security categories. The label must resolve in s.
func (s *PolicySet) MarshalESS(l *Label) ([]byte, error) {
	r, err := s.resolve(l)
	if err != nil {
		return nil, err
	}
	var fields [][]byte
	fields = append(fields, appendTLV(nil, 0x02, intBody(r.cls.lacv)))
	ob, err := oidBody(r.pol.id)
	if err != nil {
		return nil, err
	}
	fields = append(fields, appendTLV(nil, 0x06, ob))
	if l.PrivacyMark != "" {
		fields = append(fields, appendTLV(nil, 0x0c, []byte(l.PrivacyMark)))
	}
	if len(r.cats) > 0 {
		type key struct {
			set string
			t   TagType
		}
		groups := map[key][]uint64{}
		var order []key
		for _, c := range r.cats {
			k := key{c.tag.set.id, c.tag.typ}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], c.lacv)
		}
		var scs [][]byte
		for _, k := range order {
			var syn string
			var field []byte
			vals := groups[k]
			slices.Sort(vals)
			switch k.t {
			case Restrictive, Permissive, Informative:
				syn = map[TagType]string{Restrictive: oidRestrictiveBitmap, Permissive: oidPermissiveBitmap, Informative: oidInformative}[k.t]
				max := vals[len(vals)-1]
				if max >= maxLACVBits {
					return nil, fmt.Errorf("ess: lacv %d too large for a bitmap", max)
				}
				bits := make([]byte, max/8+1)
				for _, v := range vals {
					bits[v/8] |= 0x80 >> (v % 8)
				}
				unused := byte(7 - max%8)
				field = appendTLV(nil, 0x03, append([]byte{unused}, bits...))
			case EnumPermissive, EnumRestrictive:
				syn = oidEnumeratedPermissive
				if k.t == EnumRestrictive {
					syn = oidEnumeratedRestrictive
				}
				var ints [][]byte
				for _, v := range vals {
					ints = append(ints, appendTLV(nil, 0x02, intBody(v)))
				}
				sort.Slice(ints, func(i, j int) bool { return bytes.Compare(ints[i], ints[j]) < 0 })
				field = appendTLV(nil, 0x31, bytes.Join(ints, nil))
			}
			sb, err := oidBody(syn)
			if err != nil {
				return nil, err
			}
			tb, err := oidBody(k.set)
			if err != nil {
				return nil, err
			}
			inner := appendTLV(nil, 0x30, append(appendTLV(nil, 0x06, tb), field...))
			sc := appendTLV(nil, 0x30, append(appendTLV(nil, 0x80, sb), appendTLV(nil, 0xa1, inner)...))
			scs = append(scs, sc)
		}
		sort.Slice(scs, func(i, j int) bool { return bytes.Compare(scs[i], scs[j]) < 0 })
		fields = append(fields, appendTLV(nil, 0x31, bytes.Join(scs, nil)))
	}
	return appendTLV(nil, 0x31, bytes.Join(fields, nil)), nil
}

// parseClearanceDER decodes an RFC 5755 Clearance: SEQUENCE { policyId
// OID, classList BIT STRING DEFAULT {unclassified}, securityCategories
// SET OF SecurityCategory OPTIONAL }; class bit n = lacv n.
func parseClearanceDER(data []byte) (*Clearance, error) {
	seq, rest, err := readTLV(data)
	if err != nil {
		return nil, err
	}
	if seq.tag != 0x30 || len(rest) != 0 {
		return nil, errors.New("clearance: not a single SEQUENCE")
	}
	oid, b, err := readTLV(seq.body)
	if err != nil || oid.tag != 0x06 {
		return nil, errors.New("clearance: policyId is not an OID")
	}
	c := &Clearance{Format: "der"}
	if c.PolicyOID, err = parseOID(oid.body); err != nil {
		return nil, err
	}
	classes := []uint64{1} // DEFAULT {unclassified}
	seenClasses := false
	for len(b) > 0 {
		var e tlv
		if e, b, err = readTLV(b); err != nil {
			return nil, err
		}
		switch {
		case e.tag == 0x03 && !seenClasses && c.Categories == nil:
			seenClasses = true
			if classes, err = attrValues(e); err != nil {
				return nil, err
			}
		case e.tag == 0x31 && c.Categories == nil:
			if c.Categories, err = parseSecurityCategories(e.body); err != nil {
				return nil, err
			}
			if c.Categories == nil {
				c.Categories = []Category{}
			}
		default:
			return nil, fmt.Errorf("clearance: unexpected field with tag 0x%02x", e.tag)
		}
	}
	for _, v := range classes {
		c.Classes = append(c.Classes, ClassRef{LACV: v, HasLACV: true})
	}
	return c, nil
}
