package store

import (
	"path/filepath"
)

// UpdateRecord changes a container's record under its lock: what docker
// update and rename change of what a container is (its limits, its
// restart policy). The record is written whole and renamed into place.
func (s *Store) UpdateRecord(id string, fn func(*Record) error) error {
	unlock, err := s.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := s.load(id)
	if err != nil {
		return err
	}
	if err := fn(r); err != nil {
		return err
	}
	return writeJSON(filepath.Join(s.Dir(id), "config.json"), r, true)
}
