package fleet

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Member is one probe agent as its heartbeats describe it.
type Member struct {
	ID       string
	Location string
	// Name and Version are what the agent says of itself (host name,
	// upwatch version), for operators.
	Name, Version string
	// KeyID is the API key it authenticated with.
	KeyID     string
	SeenAt    time.Time
	ExpiresAt time.Time // alive until then, unless it heartbeats again
}

// Store keeps agents' heartbeats. It is shared by every server on one
// registry, so all of them see the same live members.
type Store interface {
	// Heartbeat records m (inserting or replacing the agent m.ID): it is
	// alive until m.ExpiresAt.
	Heartbeat(ctx context.Context, m Member) error
	// LiveMembers returns location's agents whose ExpiresAt is after now,
	// sorted by ID.
	LiveMembers(ctx context.Context, location string, now time.Time) ([]Member, error)
}

// MemStore is a Store in memory, for tests and single-process use.
type MemStore struct {
	mu sync.Mutex
	m  map[string]Member
}

var _ Store = (*MemStore)(nil)

// Heartbeat implements Store.
func (s *MemStore) Heartbeat(_ context.Context, m Member) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Member{}
	}
	s.m[m.ID] = m
	return nil
}

// LiveMembers implements Store.
func (s *MemStore) LiveMembers(_ context.Context, location string, now time.Time) ([]Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Member
	for _, m := range s.m {
		if m.Location == location && m.ExpiresAt.After(now) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}
