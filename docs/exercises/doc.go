// Package exercises checks the book's exercises: one test per exercise,
// TestExerciseNN_K for exercise K of chapter NN, that passes once the
// learner's change (or answer) is right and fails before.
//
// The tests carry the build tag "exercise", so that go test ./... (and
// make test) never runs them against the untouched tree, where they must
// fail. A learner runs one with
//
//	sudo make check CHAPTER=01 EXERCISE=2
//
// and docs/solutions_test.go (part of make test) proves every one of them:
// it fails on the untouched tree, and passes on a scratch copy with its
// reference solution (docs/solutions/NN-K.patch) applied.
//
// An exercise that asks for an observation is answered in a file,
// answers/NN-K/answer, one value per line (lines starting with # are
// notes, for the learner, and do not count); one that asks for a program
// has it in answers/NN-K/ as package main. The check reads the answer and,
// where the machine allows, makes the same observation itself, so that an
// answer is checked against this tree and this kernel, not against a
// string that could go stale.
package exercises
