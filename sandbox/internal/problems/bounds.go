package problems

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A problem answers a request, so a request must not be able to make it
// large (R43, OWASP API4:2023): a body with 4,000 unknown fields once
// answered 156 MB, each error carrying the whole request as its value. So a
// problem lists at most MaxErrors errors and counts the rest, each value is
// summarised, every string the request can reach is cut, and the whole
// body, as sent, is at most MaxBytes. The limits are in encoded bytes, so
// they hold whatever the strings hold (escapes, invalid UTF-8).
const (
	// MaxErrors is how many errors a problem lists; ErrorsOmitted counts
	// the rest.
	MaxErrors = 20
	// MaxBytes bounds a problem's JSON body, the newline after it
	// included.
	MaxBytes = 16 << 10

	// Bounds of each string, in encoded bytes (and so in characters, which
	// the spec's maxLength counts).
	maxLocation = 160
	maxMessage  = 256
	maxValue    = 200
	maxDetail   = 1024
	maxInstance = 512
	maxJobID    = 64
)

// ListErrors lists errs on p: the first MaxErrors, each cut to its bounds
// with its value summarised (Summarise), and the number of the others in
// ErrorsOmitted.
func (p *Problem) ListErrors(errs []*FieldError) {
	n := min(len(errs), MaxErrors)
	p.Errors = make([]*FieldError, n)
	for i, fe := range errs[:n] {
		p.Errors[i] = fe.bounded()
	}
	p.ErrorsOmitted = len(errs) - n
}

// ErrorsDetail is the detail of a problem about total errors of which
// listed are in its errors: it says how many there are and where to look.
func ErrorsDetail(total, listed int) string {
	if listed >= total {
		return strconv.Itoa(total) + " problems with the request; see errors."
	}
	return fmt.Sprintf("%d problems with the request; the first %d are listed in errors.", total, listed)
}

func (fe *FieldError) bounded() *FieldError {
	if fe == nil {
		return &FieldError{}
	}
	return &FieldError{Location: Cut(fe.Location, maxLocation), Message: Cut(fe.Message, maxMessage), Value: Summarise(fe.Value)}
}

// Summarise is what a problem shows of a value that was sent: numbers,
// booleans and null as they are; strings cut to 200 bytes with an
// ellipsis; objects and arrays by their type and size ("object with 4000
// fields", "array of 87000 items"), never their content.
func Summarise(v any) any {
	switch x := v.(type) {
	case nil, bool, float64, int, int64:
		return x
	case string:
		return Cut(x, maxValue)
	case json.Number:
		return Cut(string(x), maxValue)
	case map[string]any:
		return sizeOf("object with", len(x), "field")
	case []any:
		return sizeOf("array of", len(x), "item")
	}
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Interface {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	switch rv.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return rv.Interface()
	case reflect.String:
		return Cut(rv.String(), maxValue)
	case reflect.Map:
		return sizeOf("object with", rv.Len(), "field")
	case reflect.Struct:
		return sizeOf("object with", rv.NumField(), "field")
	case reflect.Slice, reflect.Array:
		return sizeOf("array of", rv.Len(), "item")
	}
	return Cut(fmt.Sprint(v), maxValue)
}

func sizeOf(what string, n int, unit string) string {
	if n != 1 {
		unit += "s"
	}
	return what + " " + strconv.Itoa(n) + " " + unit
}

// ellipsis marks a cut string.
const ellipsis = "…"

// Cut returns s if it encodes in JSON to at most limit bytes; otherwise its
// longest prefix (whole characters) that does with an ellipsis after it.
// It reads s only as far as the limit.
func Cut(s string, limit int) string {
	n, end := 0, -1
	for i, r := range s {
		n += runeCost(r, s[i:])
		if end < 0 && n > limit-len(ellipsis) {
			end = i
		}
		if n > limit {
			return s[:end] + ellipsis
		}
	}
	return s
}

// encodedLen bounds from above the bytes s takes inside a JSON string,
// whether or not the encoder escapes HTML.
func encodedLen(s string) int {
	n := 0
	for i, r := range s {
		n += runeCost(r, s[i:])
	}
	return n
}

// runeCost is the most bytes r, the first rune of rest, can take inside a
// JSON string: six for what is written as \uXXXX (control characters,
// invalid UTF-8 as \ufffd, <, > and & when HTML is escaped, U+2028 and
// U+2029), two for " and \, else its UTF-8 length.
func runeCost(r rune, rest string) int {
	switch {
	case r == utf8.RuneError && runeLen(rest) == 1:
		return 6
	case r < 0x20, r == '<', r == '>', r == '&', r == '\u2028', r == '\u2029':
		return 6
	case r == '"', r == '\\':
		return 2
	}
	return utf8.RuneLen(r)
}

func runeLen(s string) int {
	_, n := utf8.DecodeRuneInString(s)
	return n
}

// MarshalJSON writes p within its bounds: at most MaxErrors errors, every
// string the request can reach cut, and the whole at most MaxBytes once
// Huma adds its newline. Only a docs base (-docs-base) of many kilobytes
// could leave that over, after every error is dropped and detail and
// instance are cut short.
func (p *Problem) MarshalJSON() ([]byte, error) {
	b := *p
	b.Detail, b.Instance, b.JobID = Cut(p.Detail, maxDetail), Cut(p.Instance, maxInstance), Cut(p.JobID, maxJobID)
	if len(p.Errors) > 0 {
		b.Errors = make([]*FieldError, 0, min(len(p.Errors), MaxErrors))
		for _, fe := range p.Errors[:min(len(p.Errors), MaxErrors)] {
			b.Errors = append(b.Errors, fe.bounded())
		}
		b.ErrorsOmitted += len(p.Errors) - len(b.Errors)
	}
	out, err := encode(&b)
	for err == nil && len(out) >= MaxBytes && len(b.Errors) > 0 {
		total := len(b.Errors) + b.ErrorsOmitted
		if rest, ok := strings.CutPrefix(b.Detail, ErrorsDetail(total, len(b.Errors))); ok {
			b.Detail = ErrorsDetail(total, len(b.Errors)-1) + rest
		}
		b.Errors, b.ErrorsOmitted = b.Errors[:len(b.Errors)-1], b.ErrorsOmitted+1
		out, err = encode(&b)
	}
	if err == nil && len(out) >= MaxBytes {
		b.Detail, b.Instance = Cut(b.Detail, maxDetail/4), Cut(b.Instance, maxInstance/4)
		out, err = encode(&b)
	}
	return out, err
}

// wire is Problem without its methods, so encoding it does not recurse.
type wire Problem

// encode writes p as Huma does (no HTML escaping), without the newline.
func encode(p *Problem) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode((*wire)(p)); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
