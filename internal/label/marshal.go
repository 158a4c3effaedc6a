package label

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"time"
)

func esc(b *bytes.Buffer, s string) {
	xml.EscapeText(b, []byte(s))
}

// MarshalXML4774 writes l as a STANAG 4774 label of the given kind, in a
// canonical deterministic form. The label must carry names (resolve
// spiffy and ESS labels with PolicySet.Resolve first) and a creation time.
func (l *Label) MarshalXML4774(kind Kind) ([]byte, error) {
	if l.PolicyName == "" || l.Class == "" {
		return nil, errors.New("label: policy and classification names needed; resolve the label first")
	}
	if l.Created.IsZero() {
		return nil, errors.New("label: CreationDateTime needed")
	}
	var b bytes.Buffer
	b.WriteString("<" + kind.element() + ` xmlns="` + NS4774Label + `"`)
	if l.ID != "" {
		b.WriteString(` Id="`)
		esc(&b, l.ID)
		b.WriteString(`"`)
	}
	if !l.Review.IsZero() {
		b.WriteString(` ReviewDateTime="` + l.Review.UTC().Format(time.RFC3339Nano) + `"`)
	}
	b.WriteString("><ConfidentialityInformation><PolicyIdentifier")
	if l.PolicyOID != "" {
		b.WriteString(` URI="urn:oid:` + l.PolicyOID + `"`)
	}
	b.WriteString(">")
	esc(&b, l.PolicyName)
	b.WriteString("</PolicyIdentifier><Classification>")
	esc(&b, l.Class)
	b.WriteString("</Classification>")
	if l.PrivacyMark != "" {
		b.WriteString("<PrivacyMark>")
		esc(&b, l.PrivacyMark)
		b.WriteString("</PrivacyMark>")
	}
	open := false
	var curSet, curType string
	for _, c := range l.Categories {
		if c.TagSet == "" || c.Value == "" {
			return nil, fmt.Errorf("label: category %s/%d has no name; resolve the label first", c.TagSetID, c.LACV)
		}
		typ := c.Type.Kind4774()
		if !open || c.TagSet != curSet || typ != curType {
			if open {
				b.WriteString("</Category>")
			}
			b.WriteString(`<Category TagName="`)
			esc(&b, c.TagSet)
			b.WriteString(`" Type="` + typ + `"`)
			if c.TagSetID != "" {
				b.WriteString(` URI="urn:oid:` + c.TagSetID + `"`)
			}
			b.WriteString(">")
			open, curSet, curType = true, c.TagSet, typ
		}
		b.WriteString("<GenericValue>")
		esc(&b, c.Value)
		b.WriteString("</GenericValue>")
	}
	if open {
		b.WriteString("</Category>")
	}
	b.WriteString("</ConfidentialityInformation>")
	if l.OriginatorID != "" {
		b.WriteString(`<OriginatorID IDType="`)
		esc(&b, l.OriginatorType)
		b.WriteString(`">`)
		esc(&b, l.OriginatorID)
		b.WriteString("</OriginatorID>")
	}
	b.WriteString("<CreationDateTime>" + l.Created.UTC().Format(time.RFC3339Nano) + "</CreationDateTime>")
	b.WriteString("</" + kind.element() + ">")
	return b.Bytes(), nil
}

// MarshalESS encodes l (resolved in s) as DER; see PolicySet.MarshalESS.
func (l *Label) MarshalESS(s *PolicySet) ([]byte, error) { return s.MarshalESS(l) }
