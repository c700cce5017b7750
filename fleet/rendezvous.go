// Package fleet is what serve knows of its probe agents: who is alive in
// each location (heartbeats with a TTL, kept in a Store the registry
// implements) and which targets each one checks (rendezvous hashing over a
// location's live agents). It also holds the agent protocol's wire types,
// shared by the server's API and the agent.
package fleet

import (
	"hash/fnv"
)

// Owner returns the member of members that checks key: the one with the
// highest rendezvous score. Every caller with the same members picks the
// same owner, and when a member leaves only its keys move (each to the
// member with its next-highest score); a member that joins takes about
// 1/n of the keys, from every other member. Owner returns "" for no
// members.
func Owner(key string, members []string) string {
	var best string
	var bestScore uint64
	for _, m := range members {
		if s := score(key, m); best == "" || s > bestScore || (s == bestScore && m < best) {
			best, bestScore = m, s
		}
	}
	return best
}

// score is the weight of member for key: FNV-1a of both, through a
// 64-bit finaliser so that near-identical names spread evenly.
func score(key, member string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(member))
	x := h.Sum64()
	// splitmix64's finaliser.
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
