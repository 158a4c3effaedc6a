package label

import (
	"strings"
	"testing"
)

// spif wraps classification and tag-set XML in a minimal policy.
func spif(root, classes, tagSets, extra string) string {
	return `<SPIF` + root + `><securityPolicyId name="T" id="2.25.7"/>` + extra +
		`<securityClassifications>` + classes + `</securityClassifications>` +
		`<securityCategoryTagSets>` + tagSets + `</securityCategoryTagSets></SPIF>`
}

const (
	okClasses = `<securityClassification name="LOW" lacv="1" hierarchy="1"/><securityClassification name="HIGH" lacv="2" hierarchy="2"/>`
	okSet     = `<securityCategoryTagSet name="S" id="2.25.7.1"><securityCategoryTag name="S" tagType="restrictive"><tagCategory name="A" lacv="1"/></securityCategoryTag></securityCategoryTagSet>`
)

func TestBrokenPolicies(t *testing.T) {
	ns := ` xmlns="` + SPIFNamespace + `" schemaVersion="2.1"`
	tests := []struct {
		name, doc, want string
	}{
		{"duplicate class name", spif(ns, okClasses+`<securityClassification name="low" lacv="3" hierarchy="3"/>`, okSet, ""), `securityClassification "low": duplicate classification name`},
		{"duplicate class lacv", spif(ns, okClasses+`<securityClassification name="MID" lacv="2" hierarchy="3"/>`, okSet, ""), `securityClassification "MID": duplicate classification lacv 2`},
		{"duplicate tag set id", spif(ns, okClasses, okSet+strings.Replace(okSet, `name="S"`, `name="S2"`, 1), ""), "duplicate tag set id"},
		{"duplicate tag set name", spif(ns, okClasses, okSet+strings.Replace(okSet, `2.25.7.1`, `2.25.7.2`, 1), ""), "duplicate tag set name"},
		{"duplicate category lacv", spif(ns, okClasses, strings.Replace(okSet, `<tagCategory name="A" lacv="1"/>`, `<tagCategory name="A" lacv="1"/><tagCategory name="B" lacv="1"/>`, 1), ""), `tagCategory "B": duplicate lacv 1`},
		{"dangling excludedClass", spif(ns, okClasses, strings.Replace(okSet, `lacv="1"/>`, `lacv="1"><excludedClass>MID</excludedClass></tagCategory>`, 1), ""), `excludedClass: "MID" names no classification`},
		{"duplicate excludedClass", spif(ns, okClasses, strings.Replace(okSet, `lacv="1"/>`, `lacv="1"><excludedClass>LOW</excludedClass><excludedClass>LOW</excludedClass></tagCategory>`, 1), ""), `duplicate excluded classification "LOW" in category`},
		{"dangling requiredClass", spif(ns, okClasses, strings.Replace(okSet, `lacv="1"/>`, `lacv="1" requiredClass="TOP"/>`, 1), ""), `requiredClass "TOP"`},
		{"dangling tagSetRef", spif(ns, okClasses, strings.Replace(okSet, `lacv="1"/>`, `lacv="1"><excludedCategory tagSetRef="Nope" tagType="restrictive" all="true"/></tagCategory>`, 1), ""), `tagSetRef "Nope"`},
		{"dangling lacv ref", spif(ns, strings.Replace(okClasses, `hierarchy="2"/>`, `hierarchy="2"><requiredCategory operation="all"><categoryGroup tagSetRef="S" tagType="restrictive" lacv="9"/></requiredCategory></securityClassification>`, 1), okSet, ""), `no restrictive category with lacv 9`},
		{"dangling policyRef", spif(ns, strings.Replace(okClasses, `hierarchy="2"/>`, `hierarchy="2"><equivalentClassification policyRef="X" lacv="1" applied="both"/></securityClassification>`, 1), okSet, ""), `policyRef "X"`},
		{"bad applied", spif(ns, strings.Replace(okClasses, `hierarchy="2"/>`, `hierarchy="2"><equivalentClassification policyRef="X" lacv="1" applied="always"/></securityClassification>`, 1), okSet, `<equivalentPolicies><equivalentPolicy name="X" id="2.25.8"/></equivalentPolicies>`), `applied "always"`},
		{"unknown marking code", spif(ns, strings.Replace(okClasses, `hierarchy="2"/>`, `hierarchy="2"><markingData phrase="x"><code>blink</code></markingData></securityClassification>`, 1), okSet, ""), `unknown marking code "blink"`},
		{"missing operation", spif(ns, strings.Replace(okClasses, `hierarchy="2"/>`, `hierarchy="2"><requiredCategory><categoryGroup tagSetRef="S" tagType="restrictive"/></requiredCategory></securityClassification>`, 1), okSet, ""), `operation ""`},
		{"notApplicable tag type", spif(ns, okClasses, strings.Replace(okSet, `tagType="restrictive"`, `tagType="notApplicable"`, 1), ""), `tagType "notApplicable"`},
		{"schema 3.0", spif(` xmlns="`+SPIFNamespace+`" schemaVersion="3.0"`, okClasses, okSet, ""), `schemaVersion "3.0"`},
		{"wrong namespace", spif(` xmlns="urn:other"`, okClasses, okSet, ""), "not SPIF"},
		{"bad policy OID", strings.Replace(spif(ns, okClasses, okSet, ""), `2.25.7"`, `2.25.x"`, 1), "securityPolicyId"},
	}
	for _, tc := range tests {
		_, err := ParsePolicy([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestLenientPolicy(t *testing.T) {
	// No namespace, no schemaVersion, a typo in an end tag, equivalences
	// declared after they are used, all 2.1 marking codes.
	doc := `<SPIF creationDate="201511061430200Z"><securityPolicyId name="Old" id="2.25.9"/>
<securityClassifications><securityClassification name="U" lacv="0" hierarchy="0">
<equivalentClassification policyRef="New" lacv="1" applied="both"/>
<markingData phrase="UNC"><code>firstLineOfText</code><code>lastLineOfText</code><code>subject</code><code>xHeader</code><code>portionMarking</code><code>inputTitle</code><code>waterMark</code><code>documentStart</code><code>documentEnd</code><code>pageBottom</code></markingData>
</securityClassification></securityClassifications>
<securityCategoryTagSets><securityCategoryTagSet name="S" id="2.25.9.1"><securityCategoryTag name="S" tagType="permissive"><tagCategory name="A" lacv="1"/></securityCategoryTag></securityCategoryTagSett></securityCategoryTagSets>
<equivalentPolicies><equivalentPolicy name="New" id="2.25.10"/></equivalentPolicies></SPIF>`
	p, err := ParsePolicy([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewPolicySet(p)
	if m, err := s.Marking(&Label{PolicyName: "old", Class: "u", Categories: []Category{{TagSet: "s", Type: Permissive, Value: "a"}}}, ""); err != nil || m != "Old UNC A" {
		t.Errorf("marking %q, %v", m, err)
	}
	// Labels are read strictly: a mismatched end tag is an error.
	if _, err := ParseLabel([]byte(`<originatorConfidentialityLabel xmlns="` + NS4774Label + `"><ConfidentialityInformation></ConfidentialityInformatio></originatorConfidentialityLabel>`)); err == nil {
		t.Error("mismatched end tag accepted in a label")
	}
}
