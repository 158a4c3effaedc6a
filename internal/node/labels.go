package node

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"time"

	"liaison/internal/label"
)

// BuildLabel writes an originator STANAG 4774 label under policy p with
// classification cls, releasable to the parties in relTo (in the policy's
// "Releasable To" tag set); with relTo empty it is marked NOFORN in the
// "Handling" tag set. Such labels fill the console's catalogue and let
// 'liaison send --marking' and the gateways name a label by its marking;
// the policy still decides whether the result is valid. A nil policy
// gives nil.
func BuildLabel(p *label.Policy, cls string, relTo []string, now time.Time) []byte {
	if p == nil {
		return nil
	}
	esc := func(s string) string {
		var b bytes.Buffer
		xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<originatorConfidentialityLabel xmlns="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0" ReviewDateTime="%s">`, now.AddDate(10, 0, 0).UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, `<ConfidentialityInformation><PolicyIdentifier URI="urn:oid:%s">%s</PolicyIdentifier><Classification>%s</Classification>`, esc(p.ID()), esc(p.Name()), esc(cls))
	if len(relTo) > 0 {
		b.WriteString(`<Category TagName="Releasable To" Type="PERMISSIVE">`)
		for _, r := range relTo {
			fmt.Fprintf(&b, `<GenericValue>%s</GenericValue>`, esc(r))
		}
		b.WriteString(`</Category>`)
	} else {
		b.WriteString(`<Category TagName="Handling" Type="RESTRICTIVE"><GenericValue>NOFORN</GenericValue></Category>`)
	}
	fmt.Fprintf(&b, `</ConfidentialityInformation><CreationDateTime>%s</CreationDateTime></originatorConfidentialityLabel>`, now.UTC().Format(time.RFC3339))
	return b.Bytes()
}
