package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ValidName checks a container name as Docker does.
func ValidName(name string) error {
	if !namePattern.MatchString(name) || len(name) > 128 {
		return fmt.Errorf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if idPattern.MatchString(name) {
		return fmt.Errorf("invalid container name (%s): a name may not look like an id", name)
	}
	return nil
}

// NameInUse is Docker's refusal of a taken name.
type NameInUse struct{ Name, ID string }

// reserve takes name for id: creating the index file is the reservation,
// so two creates of one name cannot both succeed. A reservation a dead
// create left (no record, a minute old) is dropped, once.
func (s *Store) reserve(name, id string) error {
	f, err := os.OpenFile(s.namePath(name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		if dropped, derr := s.dropStale(name); derr != nil {
			return derr
		} else if dropped {
			f, err = os.OpenFile(s.namePath(name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		}
	}
	if errors.Is(err, os.ErrExist) {
		other, _ := os.ReadFile(s.namePath(name))
		return &NameInUse{Name: name, ID: strings.TrimSpace(string(other))}
	}
	if err != nil {
		return fmt.Errorf("reserve name %s: %w", name, err)
	}
	_, err = f.WriteString(id)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(s.namePath(name))
		return fmt.Errorf("reserve name %s: %w", name, err)
	}
	return nil
}

// Rename gives the container a new name: the new one reserved first, the
// old one released last, so that neither is ever free to someone else in
// between.
func (s *Store) Rename(id, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	unlock, err := s.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := s.load(id)
	if err != nil {
		return err
	}
	if r.Name == name {
		//lint:ignore ST1005 Docker's own words
		return errors.New("Renaming a container with the same name as its current name")
	}
	if err := s.reserve(name, id); err != nil {
		return err
	}
	old := r.Name
	r.Name = name
	if err := writeJSON(filepath.Join(s.Dir(id), "config.json"), r, true); err != nil {
		_ = os.Remove(s.namePath(name))
		return err
	}
	if err := os.Remove(s.namePath(old)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release name %s: %w", old, err)
	}
	return nil
}
