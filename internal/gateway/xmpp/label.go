package xmpp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"liaison/internal/gateway/xmpp/stream"
)

// secLabel is a parsed XEP-0258 <securitylabel/>.
type secLabel struct {
	// Label is the raw element inside <label/>; nil means "use the default
	// label" (empty <label/>).
	Label []byte
	// Equivalents are the raw elements inside each <equivalentlabel/>.
	Equivalents [][]byte
	Display     string
}

// errLabelFormat is wrapped by every XEP-0258 structure error.
var errLabelFormat = errors.New("malformed security label")

// parseSecLabel reads the <securitylabel/> children of a stanza under the
// decisions of the domain brief: at most one <securitylabel/>, exactly one
// <label/>, at most one element in it, no text in it. found is false when
// the stanza carries no label.
func parseSecLabel(st *stream.Element, raw []byte) (sl secLabel, found bool, err error) {
	all := st.ChildrenNamed(nsSecLabel, "securitylabel")
	switch len(all) {
	case 0:
		return secLabel{}, false, nil
	case 1:
	default:
		return secLabel{}, true, fmt.Errorf("%w: %d securitylabel elements", errLabelFormat, len(all))
	}
	e := all[0]
	labels := e.ChildrenNamed(nsSecLabel, "label")
	if len(labels) != 1 {
		return secLabel{}, true, fmt.Errorf("%w: %d label elements", errLabelFormat, len(labels))
	}
	lbl := labels[0]
	if strings.TrimSpace(lbl.Text) != "" {
		return secLabel{}, true, fmt.Errorf("%w: text inside label", errLabelFormat)
	}
	switch len(lbl.Children) {
	case 0:
	case 1:
		sl.Label = lbl.Children[0].Raw(raw)
		if sl.Label == nil {
			return secLabel{}, true, fmt.Errorf("%w: label bytes out of range", errLabelFormat)
		}
	default:
		return secLabel{}, true, fmt.Errorf("%w: %d elements inside label", errLabelFormat, len(lbl.Children))
	}
	for _, eq := range e.ChildrenNamed(nsSecLabel, "equivalentlabel") {
		if len(eq.Children) != 1 {
			return secLabel{}, true, fmt.Errorf("%w: equivalentlabel needs one element", errLabelFormat)
		}
		sl.Equivalents = append(sl.Equivalents, eq.Children[0].Raw(raw))
	}
	if dm := e.Child(nsSecLabel, "displaymarking"); dm != nil {
		sl.Display = dm.Text
	}
	return sl, true, nil
}

// ParseSecurityLabel parses a standalone <securitylabel/> element (for
// example an S2S payload or a stored stanza) and returns the raw element
// inside its <label/> (nil for the default label).
func ParseSecurityLabel(b []byte) ([]byte, error) {
	wrapped := append(append([]byte("<x>"), b...), "</x>"...)
	e, raw, err := stream.Parse(wrapped, stream.NSClient)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errLabelFormat, err)
	}
	if len(e.Children) != 1 {
		return nil, fmt.Errorf("%w: want one securitylabel element", errLabelFormat)
	}
	sl, found, err := parseSecLabel(e, raw)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: not a securitylabel", errLabelFormat)
	}
	return bytes.Clone(sl.Label), nil
}

// stripDecl removes a leading XML declaration so that label bytes can be
// embedded in a stanza.
func stripDecl(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if bytes.HasPrefix(b, []byte("<?xml")) {
		if i := bytes.Index(b, []byte("?>")); i >= 0 {
			b = bytes.TrimSpace(b[i+2:])
		}
	}
	return b
}

// secLabelXML renders a label for a stanza: display marking first, then the
// 4774 label bytes verbatim.
func (s *Server) secLabelXML(label4774 []byte, lang string) (string, error) {
	disp, fg, bg, err := s.cfg.Labels.Marking(label4774, lang)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("<securitylabel xmlns='" + nsSecLabel + "'><displaymarking")
	if fg != "" {
		b.WriteString(" fgcolor='" + esc(fg) + "'")
	}
	if bg != "" {
		b.WriteString(" bgcolor='" + esc(bg) + "'")
	}
	b.WriteString(">" + esc(disp) + "</displaymarking><label>")
	b.Write(stripDecl(label4774))
	b.WriteString("</label></securitylabel>")
	return b.String(), nil
}

// catalog answers an XEP-0258 catalog request: the channel's labels that
// the requester's clearance permits, restricted to those.
func (ss *session) catalog(e, q *stream.Element, ns, to string) {
	srv := ss.srv
	ctxJID := q.AttrValue("to")
	channel, roomName := srv.cfg.DirectChannel, ""
	var peer *partner
	if j, err := parseJID(ctxJID); err == nil && srv.partnerFor(j.Domain) != nil {
		// Cross-border context: user clearance ∩ the agreement's peer clearance.
		peer = srv.partnerFor(j.Domain)
		channel = peer.Channel
	} else if err == nil && j.Domain == srv.cfg.MUCDomain {
		if rm := srv.rooms[j.Local]; rm != nil {
			channel, roomName = rm.Channel, rm.Name
		} else {
			ss.iqError(e, to, "cancel", "item-not-found")
			return
		}
	}
	var items strings.Builder
	n := 0
	for _, it := range srv.cfg.Labels.Catalog(channel) {
		sel := ""
		if it.Selector != "" {
			sel = " selector='" + esc(it.Selector) + "'"
		}
		def := ""
		if it.Default {
			def = " default='true'"
		}
		if it.Label == nil {
			if ns == nsCatalog2 {
				items.WriteString("<item" + sel + def + "/>")
				n++
			}
			continue
		}
		if peer != nil {
			if ok, _ := srv.cfg.Labels.ACDF(it.Label, peer.Clearance); !ok {
				continue
			}
		}
		if ok, _ := srv.cfg.Labels.ACDF(it.Label, ss.user.Clearance); !ok {
			continue
		}
		if roomName != "" {
			if ok, _ := srv.cfg.Labels.Permit(it.Label, roomName); !ok {
				continue
			}
		}
		x, err := srv.secLabelXML(it.Label, ss.lang)
		if err != nil {
			continue
		}
		if ns == nsCatalog0 {
			items.WriteString(x) // catalog:0 lists bare securitylabels
		} else {
			items.WriteString("<item" + sel + def + ">" + x + "</item>")
		}
		n++
	}
	attrs := " to='" + esc(ctxJID) + "' name='" + esc(channel) + "' desc='labels for " + esc(channel) + "' restrict='true'"
	if ns == nsCatalog2 {
		attrs += " size='" + fmt.Sprint(n) + "'"
	}
	ss.iqResult(e, to, "<catalog xmlns='"+ns+"'"+attrs+">"+items.String()+"</catalog>")
}

// effectiveLabel reads the primary label, falling back to an
// <equivalentlabel/> under a policy the engine knows (XEP-0258 §5).
func (s *Server) effectiveLabel(sl secLabel) ([]byte, error) {
	l, err := s.cfg.Labels.Parse(sl.Label)
	if err == nil {
		return l, nil
	}
	for _, eq := range sl.Equivalents {
		if l, e2 := s.cfg.Labels.Parse(eq); e2 == nil {
			return l, nil
		}
	}
	return nil, err
}
