package node

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"

	"liaison/internal/audit"
	"liaison/internal/pki"
)

// VerifyAudit checks the audit log in a node home end to end (every
// checkpoint and entry against the tree) with the node's public key, and
// returns a one-line report.
func VerifyAudit(ctx context.Context, home string) (string, error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return "", err
	}
	id, err := pki.Load(home)
	if err != nil {
		return "", err
	}
	dir := cfg.Path(cfg.Audit.Dir)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(home, dir)
	}
	rep, err := audit.Verify(ctx, dir, AuditOrigin(cfg.Party), id.SigningKey.Public().(ed25519.PublicKey))
	if err != nil {
		return fmt.Sprint(rep), err
	}
	return fmt.Sprint(rep), nil
}
