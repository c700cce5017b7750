package api

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/upwatch/upwatch/prober"
)

// Raw export formats: one sample per CSV row or NDJSON line, written as
// they are read so an export of any size streams in constant memory.

// Media types of the export formats.
const (
	mediaCSV    = "text/csv; charset=utf-8"
	mediaNDJSON = "application/x-ndjson"
)

// sampleWriter writes samples in one export format.
type sampleWriter interface {
	Write(r prober.Result) error
	// Flush pushes what is buffered to the underlying writer.
	Flush() error
}

// csvColumns is the header row of a CSV export. Durations are in seconds,
// times in RFC 3339 (UTC, nanoseconds).
var csvColumns = []string{
	"time", "target_id", "location", "success", "duration_seconds",
	"dns_seconds", "connect_seconds", "tls_seconds", "ttfb_seconds", "transfer_seconds",
	"status_code", "error_class", "error", "tls_expiry", "body_bytes", "remote_addr",
}

type csvSampleWriter struct {
	w      *csv.Writer
	header bool
	row    []string
}

// newCSVSampleWriter writes RFC 4180 CSV with a header row (written with
// the first sample, or by Flush when there is none).
func newCSVSampleWriter(w io.Writer) *csvSampleWriter {
	return &csvSampleWriter{w: csv.NewWriter(w), row: make([]string, len(csvColumns))}
}

func (c *csvSampleWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	return c.w.Write(csvColumns)
}

func (c *csvSampleWriter) Write(r prober.Result) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	f := func(d time.Duration) string { return strconv.FormatFloat(seconds(d), 'f', -1, 64) }
	c.row[0] = r.Start.UTC().Format(time.RFC3339Nano)
	c.row[1] = csvSafe(r.TargetID)
	c.row[2] = csvSafe(r.Location)
	c.row[3] = strconv.FormatBool(r.Success)
	c.row[4] = f(r.Duration)
	c.row[5] = f(r.Phases.DNS)
	c.row[6] = f(r.Phases.Connect)
	c.row[7] = f(r.Phases.TLS)
	c.row[8] = f(r.Phases.TTFB)
	c.row[9] = f(r.Phases.Transfer)
	c.row[10] = ""
	if r.StatusCode != 0 {
		c.row[10] = strconv.Itoa(r.StatusCode)
	}
	c.row[11] = string(r.ErrorClass)
	c.row[12] = csvSafe(r.Error)
	c.row[13] = ""
	if !r.TLSExpiry.IsZero() {
		c.row[13] = r.TLSExpiry.UTC().Format(time.RFC3339)
	}
	c.row[14] = ""
	if r.BodyBytes != 0 {
		c.row[14] = strconv.FormatInt(r.BodyBytes, 10)
	}
	c.row[15] = csvSafe(r.RemoteAddr)
	return c.w.Write(c.row)
}

func (c *csvSampleWriter) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

// csvSafe defuses text a spreadsheet would run as a formula (a cell
// starting with = + - @, tab or carriage return) by prefixing a quote, as
// OWASP advises. Only free text goes through it (error messages, names).
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

type ndjsonSampleWriter struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

// newNDJSONSampleWriter writes one JSON object per line, in the same shape
// as the samples of GET /targets/{id}/samples.
func newNDJSONSampleWriter(w io.Writer) *ndjsonSampleWriter {
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &ndjsonSampleWriter{bw: bw, enc: enc}
}

func (n *ndjsonSampleWriter) Write(r prober.Result) error { return n.enc.Encode(newSampleDoc(r)) }

func (n *ndjsonSampleWriter) Flush() error { return n.bw.Flush() }
