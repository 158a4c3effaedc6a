package audit
import "golang.org/x/mod/sumdb/note"
type noteVerifier = note.Verifier
