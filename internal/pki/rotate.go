package pki

import (
	"crypto/hpke"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Rotate generates a new HPKE key pair for epoch+1 and makes it current. The
// previous keys stay available to [Identity.HPKEKey] so that envelopes sealed
// to them can still be opened until they are drained; then call
// [Identity.Retire]. Export a new card after rotating.
func (id *Identity) Rotate(now time.Time) error {
	_ = now // reserved for a rotation record; the epoch is the ordering
	id.mu.Lock()
	defer id.mu.Unlock()
	k, err := id.KEM.GenerateKey()
	if err != nil {
		return err
	}
	next := id.Epoch + 1
	if next == 0 {
		return fmt.Errorf("hpke key epoch overflow")
	}
	if err := writeHPKEKey(filepath.Join(id.Dir, hpkeFileName(next)), k, next); err != nil {
		return fmt.Errorf("rotate hpke key: %w", err)
	}
	if id.previous == nil {
		id.previous = map[uint32]hpke.PrivateKey{}
	}
	if id.HPKEPriv != nil {
		id.previous[id.Epoch] = id.HPKEPriv
	}
	id.Epoch, id.HPKEPriv = next, k
	return nil
}

// Retire destroys the key of an epoch older than the current one, once no
// envelope sealed to it remains undelivered.
func (id *Identity) Retire(epoch uint32) error {
	id.mu.Lock()
	cur := id.Epoch
	id.mu.Unlock()
	if epoch == cur {
		return fmt.Errorf("cannot retire current hpke epoch %d; rotate first", epoch)
	}
	return id.Zeroise(epoch)
}

// Zeroise destroys the HPKE key of an epoch, current or not: it drops the key
// from memory and overwrites and removes its file. After zeroising the
// current epoch the node can open nothing sealed to it and must rotate.
// Go cannot guarantee that no copy of the key stays in memory; dropping the
// last reference is what it offers.
func (id *Identity) Zeroise(epoch uint32) error {
	id.mu.Lock()
	defer id.mu.Unlock()
	if epoch == id.Epoch {
		id.HPKEPriv = nil
	} else if _, ok := id.previous[epoch]; !ok {
		return fmt.Errorf("no hpke key for epoch %d", epoch)
	}
	delete(id.previous, epoch)
	err := destroyFile(filepath.Join(id.Dir, hpkeFileName(epoch)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
