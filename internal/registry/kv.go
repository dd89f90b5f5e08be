package registry

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// KV is where the registry persists: a collector storage extension client
// (file_storage) or the embedded bbolt file. storage.Client satisfies it.
type KV interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Set(ctx context.Context, key string, value []byte) error
	Close(ctx context.Context) error
}

var bucket = []byte("metricsmodule_registry")

// boltKV is a KV in a bbolt file.
type boltKV struct{ db *bolt.DB }

// OpenBolt opens (or creates) a bbolt file readable by the owner only.
func OpenBolt(path string) (KV, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create registry directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open registry file %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init registry file: %w", err)
	}
	return &boltKV{db: db}, nil
}

func (b *boltKV) Get(_ context.Context, key string) ([]byte, error) {
	var out []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucket).Get([]byte(key)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, err
}

func (b *boltKV) Set(_ context.Context, key string, value []byte) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		if value == nil {
			return tx.Bucket(bucket).Delete([]byte(key))
		}
		return tx.Bucket(bucket).Put([]byte(key), value)
	})
}

// Close closes the file; it is idempotent.
func (b *boltKV) Close(context.Context) error {
	if b.db == nil {
		return nil
	}
	err := b.db.Close()
	b.db = nil
	return err
}
