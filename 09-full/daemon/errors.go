//go:build linux

package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/common"

	"berth/01-uts/spine"
	imgstore "berth/08-image/store"
	"berth/09-full/store"
)

// MaxBody bounds a request's JSON body: a create request is a few KiB,
// and a client must not make the daemon hold more.
const MaxBody = 1 << 20

// apiError is an error with the HTTP status Docker answers it with.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &apiError{code: code, msg: fmt.Sprintf(format, args...)}
}

func notFound(msg string) error        { return &apiError{code: http.StatusNotFound, msg: msg} }
func badRequest(msg string) error      { return &apiError{code: http.StatusBadRequest, msg: msg} }
func conflict(msg string) error        { return &apiError{code: http.StatusConflict, msg: msg} }
func noSuchContainer(ref string) error { return notFound("No such container: " + ref) }

// statusOf is the status Docker gives an error: its own, 404 for a
// container or image that does not exist, 400 for bad input (the
// command line's exit 125), else 500.
func statusOf(err error) int {
	var ae *apiError
	var ee *spine.ExitError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, store.ErrNotFound), errors.Is(err, imgstore.ErrNotFound):
		return http.StatusNotFound
	case errors.As(err, &ee) && ee.Code == spine.ExitRuntime:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeError answers with Docker's error body, {"message": "..."}.
func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusOf(err), common.ErrorResponse{Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"message":"encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads a JSON body into v: at most MaxBody bytes, no field v
// does not know (a field berth would silently drop is refused), one
// value and nothing after it.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errorf(http.StatusRequestEntityTooLarge, "request body is larger than %d bytes", MaxBody)
	}
	if err != nil {
		return badRequest("read the request body: " + err.Error())
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("invalid JSON: the request body is empty")
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return badRequest("invalid JSON: " + err.Error())
	}
	if d.More() {
		return badRequest("invalid JSON: more than one value in the body")
	}
	return nil
}

// writeBody writes v as the body of an answer whose header is out.
func writeBody(w http.ResponseWriter, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	_, _ = w.Write(append(b, '\n'))
	return nil
}
