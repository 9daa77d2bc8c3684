package spine

import (
	"encoding/json"
	"fmt"
	"io"
)

// The parent and the child talk over a socketpair, one JSON object per
// message, never through argv. The conversation is short:
//
//	parent → child  config   the Container and its steps
//	parent → child  go       parent-side work is done, carry on
//	child  → parent error    setup failed; the child exits with Code
//	child  → parent (EOF)    the socket closed on execve: the command runs
//
// The child's end is close-on-exec, so a successful execve closes it and the
// parent reads EOF: that is how the parent knows the command started.
type message struct {
	Type      string     `json:"type"`
	Container *Container `json:"container,omitempty"`
	Steps     []wireStep `json:"steps,omitempty"`
	Error     string     `json:"error,omitempty"`
	Code      int        `json:"code,omitempty"`
}

const (
	msgConfig = "config"
	msgGo     = "go"
	msgError  = "error"
)

type channel struct {
	enc *json.Encoder
	dec *json.Decoder
}

func newChannel(rw io.ReadWriter) *channel {
	return &channel{enc: json.NewEncoder(rw), dec: json.NewDecoder(rw)}
}

func (ch *channel) send(m message) error {
	if err := ch.enc.Encode(m); err != nil {
		return fmt.Errorf("sync: send %s: %w", m.Type, err)
	}
	return nil
}

// recv reads one message; io.EOF means the other side closed its end.
func (ch *channel) recv() (message, error) {
	var m message
	err := ch.dec.Decode(&m)
	return m, err
}

// expect reads one message and checks its type.
func (ch *channel) expect(typ string) (message, error) {
	m, err := ch.recv()
	if err != nil {
		return m, fmt.Errorf("sync: waiting for %s: %w", typ, err)
	}
	if m.Type != typ {
		return m, fmt.Errorf("sync: got %q, want %q", m.Type, typ)
	}
	return m, nil
}
