package node

import (
	"context"
	"crypto/ed25519"
	"path/filepath"

	"liaison/internal/audit"
	"liaison/internal/pki"
)

// VerifyAudit checks the audit log in a node home end to end (every
// checkpoint and entry against the tree) with the node's public key.
func VerifyAudit(ctx context.Context, home string) (audit.Report, error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return audit.Report{}, err
	}
	id, err := pki.Load(home)
	if err != nil {
		return audit.Report{}, err
	}
	dir := cfg.Path(cfg.Audit.Dir)
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(home, dir)
	}
	return audit.Verify(ctx, dir, AuditOrigin(cfg.Party), id.SigningKey.Public().(ed25519.PublicKey))
}
