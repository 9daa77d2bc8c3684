package store

import (
	"crypto/rand"
	"math/big"
	"strconv"
)

// Names made up for a container run without --name, as Docker's
// adjective_surname (its list is longer; these are enough to tell
// containers apart at a glance).
var (
	adjectives = []string{"admiring", "bold", "brave", "busy", "calm", "clever", "cool", "eager",
		"elegant", "epic", "focused", "gallant", "gifted", "happy", "hopeful", "jolly", "keen",
		"kind", "lucid", "modest", "nice", "quirky", "relaxed", "serene", "sharp", "stoic",
		"sweet", "tender", "trusting", "vibrant", "wizardly", "zealous"}
	surnames = []string{"agnesi", "babbage", "bell", "curie", "darwin", "dijkstra", "einstein",
		"euler", "faraday", "fermi", "goldberg", "hamilton", "hopper", "hypatia", "kepler",
		"knuth", "lamport", "lovelace", "mccarthy", "meitner", "noether", "pike", "ritchie",
		"shannon", "thompson", "torvalds", "turing", "wilson", "wozniak", "yonath"}
)

// RandomName returns adjective_surname; with retry, a digit is added, as
// Docker does after a collision.
func RandomName(retry bool) string {
	name := adjectives[pick(len(adjectives))] + "_" + surnames[pick(len(surnames))]
	if retry {
		name += strconv.Itoa(pick(10))
	}
	return name
}

func pick(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic("store: crypto/rand: " + err.Error())
	}
	return int(v.Int64())
}
