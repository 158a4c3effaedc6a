// Package label implements security labels and the policies that govern
// them: Open XML SPIF policies (2.1, with lenient reading of older files),
// STANAG 4774 XML labels and clearances, ESS security labels (RFC 2634) in
// DER/BER as XEP-0258 carries them, and spiffing's XML form.
//
// A [Label] or [Clearance] is policy-independent data as read; a
// [PolicySet] resolves it against the loaded policies and answers the
// questions a guard asks: is it valid ([PolicySet.Validate]), may this
// clearance see it ([PolicySet.ACDF], failing closed), how is it marked
// ([PolicySet.Marking]), what is it under a partner's policy
// ([PolicySet.Translate]), may it go to a party ([PolicySet.ReleasableTo]),
// and what label dominates several ([PolicySet.Dominant]).
//
// Every parser bounds its input, refuses DTDs and entity declarations and
// never panics.
package label
