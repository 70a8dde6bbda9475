package sse

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// item is what the test parser yields: a dispatched event, or a comment line
// (which a browser ignores; tests want to see heartbeats).
type item struct {
	Comment   string
	IsComment bool
	Event     parsedEvent
}

type parsedEvent struct {
	Type        string
	Data        string
	LastEventID string
}

// parser follows WHATWG HTML §9.2.6 "Interpreting an event stream": lines end
// at CRLF, LF or CR; a leading BOM is dropped; a line starting with ":" is a
// comment; "field:value" drops one space after the colon; a line without a
// colon is a field with an empty value; data lines are joined with LF; id is
// ignored if it contains NUL; retry is used only if it is all ASCII digits;
// unknown fields are ignored; a blank line dispatches, unless the data buffer
// is empty.
type parser struct {
	r         *bufio.Reader
	started   bool
	skipLF    bool
	data      strings.Builder
	eventType string
	idBuffer  string
	lastID    string
	retryMS   int64 // -1 until a valid retry field is seen
}

func newParser(r io.Reader) *parser { return &parser{r: bufio.NewReader(r), retryMS: -1} }

func (p *parser) readLine() (string, error) {
	var b strings.Builder
	for {
		c, err := p.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && b.Len() > 0 {
				// An incomplete last line is discarded by the spec.
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		if p.skipLF {
			p.skipLF = false
			if c == '\n' {
				continue
			}
		}
		switch c {
		case '\n':
			return p.stripBOM(b.String()), nil
		case '\r':
			p.skipLF = true
			return p.stripBOM(b.String()), nil
		}
		b.WriteByte(c)
	}
}

func (p *parser) stripBOM(line string) string {
	if !p.started {
		p.started = true
		line = strings.TrimPrefix(line, "\uFEFF")
	}
	return line
}

// next returns the next comment or dispatched event.
func (p *parser) next() (item, error) {
	for {
		line, err := p.readLine()
		if err != nil {
			return item{}, err
		}
		if line == "" {
			p.lastID = p.idBuffer
			if p.data.Len() == 0 {
				p.eventType = ""
				continue
			}
			data := strings.TrimSuffix(p.data.String(), "\n")
			typ := p.eventType
			if typ == "" {
				typ = "message"
			}
			p.data.Reset()
			p.eventType = ""
			return item{Event: parsedEvent{Type: typ, Data: data, LastEventID: p.lastID}}, nil
		}
		if strings.HasPrefix(line, ":") {
			return item{IsComment: true, Comment: strings.TrimPrefix(line[1:], " ")}, nil
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			p.eventType = value
		case "data":
			p.data.WriteString(value)
			p.data.WriteByte('\n')
		case "id":
			if !strings.Contains(value, "\x00") {
				p.idBuffer = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				if n, err := strconv.ParseInt(value, 10, 64); err == nil {
					p.retryMS = n
				}
			}
		}
	}
}

// TestParser checks the test parser itself against the spec's corner cases,
// so the conformance tests below can trust it.
func TestParser(t *testing.T) {
	in := "\uFEFFdata: a\r\ndata:b\rdata\n" + // three line endings, no-space and no-colon forms
		"unknown: x\nretry: 12x\nid: bad\x00id\n\n" + // ignored field, bad retry, id with NUL
		": a comment\n" +
		"event: e\nid: 7\nretry: 3000\ndata:  two spaces\n\n" +
		"id: 8\n\n" + // no data: not dispatched, but the last event id moves
		"data: z\n\n" +
		"data: incomplete"
	p := newParser(strings.NewReader(in))
	want := []item{
		{Event: parsedEvent{Type: "message", Data: "a\nb\n", LastEventID: ""}},
		{IsComment: true, Comment: "a comment"},
		{Event: parsedEvent{Type: "e", Data: " two spaces", LastEventID: "7"}},
		{Event: parsedEvent{Type: "message", Data: "z", LastEventID: "8"}},
	}
	for i, w := range want {
		got, err := p.next()
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		if got != w {
			t.Fatalf("item %d = %+v, want %+v", i, got, w)
		}
		if i == 2 && p.retryMS != 3000 {
			t.Fatalf("retry = %d, want 3000 (and 12x ignored)", p.retryMS)
		}
	}
	if _, err := p.next(); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("trailing incomplete event: err = %v", err)
	}
}
