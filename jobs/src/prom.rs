//! A parser for the Prometheus text exposition format, version 0.0.4
//! (<https://prometheus.io/docs/instrumenting/exposition_formats/>): what
//! `/metrics` endpoints serve as `text/plain; version=0.0.4`.
//!
//! [`parse`] turns a scraped body into flat [`PromSample`]s, one per sample
//! line, in exposition order: the series name exactly as exposed (a
//! histogram's `x_bucket`, `x_sum` and `x_count` stay three names; a
//! summary's quantiles are samples of `x` with a `quantile` label), its labels
//! in order with their values unescaped, the value and the optional
//! timestamp. [`matches()`] selects series names with `*` globs.
//!
//! What is parsed, line by line (`\n`, or `\r\n`; a missing final newline is
//! tolerated: a body cut short is the HTTP layer's to detect):
//!
//! - blank lines, and lines whose first non-blank character is `#`, are
//!   skipped. `# HELP` and `# TYPE` carry no sample, so they are not read at
//!   all, and a docstring with escapes (or anything else) cannot break parsing;
//! - every other line is one sample:
//!   `name [ "{" label="value" { "," label="value" } [ "," ] "}" ] value [ timestamp ]`,
//!   with any number of spaces or tabs between tokens, and around the
//!   punctuation inside the braces;
//! - metric names are `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names
//!   `[a-zA-Z_][a-zA-Z0-9_]*`, each label name at most once per sample;
//! - label values are double-quoted; `\\`, `\"` and `\n` are the only
//!   escapes, and any other backslash sequence is an error;
//! - the value is read as Go's `strconv.ParseFloat` reads it, less the forms
//!   Prometheus itself refuses (hexadecimal floats and `_` digit
//!   separators): decimal with optional sign, fraction and exponent, `NaN` in
//!   any case (`Nan`), `Inf`/`Infinity` in any case with optional sign; a
//!   value beyond `f64` is an error, as it is for Go;
//! - the timestamp is a base-10 `i64` (milliseconds since the epoch, may be
//!   negative).
//!
//! Anything else is an error naming its 1-based line: the whole exposition is
//! rejected, never a line silently skipped. Not supported: the newer
//! UTF-8 quoted names (`{"my.metric"}`), OpenMetrics (`# EOF`, exemplars),
//! the protobuf format; and there is no checking across lines (TYPE against
//! samples, duplicate series, bucket order), which a caller reading samples
//! does not need.
//!
//! It is written by hand, as plain byte-level code, because no maintained
//! crate parses this format without pulling in `regex`, whose resident
//! memory this worker deliberately dropped.

/// One sample of a scraped exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    /// The series name as exposed, e.g. `http_requests_total`,
    /// `rpc_duration_seconds_bucket`.
    pub name: String,
    /// In exposition order, values unescaped.
    pub labels: Vec<(String, String)>,
    /// NaN, +Inf and -Inf included.
    pub value: f64,
    /// Milliseconds since the Unix epoch, when the line has one.
    pub timestamp_ms: Option<i64>,
}

/// Why an exposition could not be parsed: the first malformed line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct PromError {
    /// 1-based.
    pub line: usize,
    /// What was expected, quoting at most 60 characters of the offending
    /// text.
    pub message: String,
}

/// The most characters of offending text an error message quotes.
const QUOTE_CHARS: usize = 60;

/// Parses a whole exposition into its samples, in order.
///
/// Fails on the first malformed line; see the module documentation for the
/// accepted syntax.
pub fn parse(text: &str) -> Result<Vec<PromSample>, PromError> {
    let mut samples = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = line.trim_matches(|c| c == ' ' || c == '\t');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line).map_err(|message| PromError {
            line: index + 1,
            message,
        })?;
        samples.push(sample);
    }
    Ok(samples)
}

/// Whether `name` matches `pattern`: the exact name, or a glob in which each
/// `*` stands for any run of characters, the empty one included (no other
/// metacharacters). E.g. `"node_filesystem_*_bytes"`, `"*_total"`, `"up"`.
pub fn matches(pattern: &str, name: &str) -> bool {
    // Greedy matching with backtracking to the last `*` only: linear for
    // one star, O(pattern × name) at worst. Bytewise is exact for UTF-8,
    // since `*` is ASCII and a literal byte never equals a continuation byte
    // unless the whole character matches.
    let (pattern, name) = (pattern.as_bytes(), name.as_bytes());
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and where in the
    // name the star's run ends so far.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, n));
            }
            Some(&b) if b == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the last star swallow one more byte and retry.
                Some((resume, end)) => {
                    p = resume;
                    n = end + 1;
                    star = Some((resume, end + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Parses one sample line, already trimmed and known not to be blank or a
/// comment. The error is the message for [`PromError`].
fn parse_sample(line: &str) -> Result<PromSample, String> {
    let mut cur = Cursor { line, pos: 0 };

    if !cur.peek().is_some_and(is_name_start) {
        return Err(cur.expected("a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"));
    }
    let name = cur.take_while(is_name_char);
    // Only `{`, a blank or the end of the line may follow: a name running
    // into another character (`met-ric`) is a bad name, not a bad value.
    if cur.peek().is_some_and(|b| b != b'{' && !is_blank(b)) {
        return Err(cur.expected(&format!(
            "'{{' or whitespace after metric name {}",
            quote(name)
        )));
    }
    cur.skip_blanks();

    let mut labels = Vec::new();
    if cur.eat(b'{') {
        parse_labels(&mut cur, &mut labels)?;
        cur.skip_blanks();
    }

    let token = cur.take_while(|b| !is_blank(b));
    if token.is_empty() {
        return Err(cur.expected("a sample value"));
    }
    let value = parse_float(token).map_err(|why| {
        format!(
            "expected a float sample value (e.g. 12, 1.5e-3, NaN, +Inf), found {}{why}",
            quote(token)
        )
    })?;
    cur.skip_blanks();

    let mut timestamp_ms = None;
    if !cur.at_end() {
        let token = cur.take_while(|b| !is_blank(b));
        // Rust's integer syntax for i64 is Go's ParseInt(s, 10, 64): an
        // optional sign and decimal digits, out of range an error.
        let ts = token.parse::<i64>().map_err(|_| {
            format!(
                "expected an integer timestamp in milliseconds, found {}",
                quote(token)
            )
        })?;
        timestamp_ms = Some(ts);
        cur.skip_blanks();
        if !cur.at_end() {
            return Err(cur.expected("end of line after the timestamp"));
        }
    }

    Ok(PromSample {
        name: name.to_owned(),
        labels,
        value,
        timestamp_ms,
    })
}

/// Parses the label pairs after a `{`, through the closing `}`.
fn parse_labels(cur: &mut Cursor<'_>, labels: &mut Vec<(String, String)>) -> Result<(), String> {
    loop {
        cur.skip_blanks();
        // `}` here closes `{}` or follows a trailing comma.
        if cur.eat(b'}') {
            return Ok(());
        }
        if !cur.peek().is_some_and(is_label_start) {
            return Err(cur.expected("a label name ([a-zA-Z_][a-zA-Z0-9_]*) or '}'"));
        }
        let name = cur.take_while(is_label_char);
        cur.skip_blanks();
        if !cur.eat(b'=') {
            return Err(cur.expected(&format!("'=' after label name {}", quote(name))));
        }
        cur.skip_blanks();
        if !cur.eat(b'"') {
            return Err(cur.expected(&format!("'\"' opening the value of label {}", quote(name))));
        }
        let value = parse_label_value(cur, name)?;
        if labels.iter().any(|(seen, _)| seen == name) {
            return Err(format!("label {} appears twice", quote(name)));
        }
        labels.push((name.to_owned(), value));
        cur.skip_blanks();
        if cur.eat(b',') {
            continue;
        }
        if cur.eat(b'}') {
            return Ok(());
        }
        return Err(cur.expected(&format!(
            "',' or '}}' after the value of label {}",
            quote(name)
        )));
    }
}

/// Reads a label value after its opening quote, through the closing quote,
/// and returns it unescaped.
fn parse_label_value(cur: &mut Cursor<'_>, label: &str) -> Result<String, String> {
    let start = cur.pos;
    let mut value = String::new();
    loop {
        // Both stop bytes are ASCII, so every slice ends on a char boundary.
        value.push_str(cur.take_while(|b| b != b'"' && b != b'\\'));
        match cur.peek() {
            Some(b'"') => {
                cur.pos += 1;
                return Ok(value);
            }
            // A backslash: exactly three escapes are defined.
            Some(_) => {
                let unescaped = match cur.line.as_bytes().get(cur.pos + 1) {
                    Some(b'\\') => '\\',
                    Some(b'"') => '"',
                    Some(b'n') => '\n',
                    _ => {
                        return Err(cur.expected(&format!(
                            "an escape \\\\, \\\" or \\n in the value of label {}",
                            quote(label)
                        )))
                    }
                };
                value.push(unescaped);
                cur.pos += 2;
            }
            None => {
                return Err(format!(
                    "expected '\"' closing the value of label {}, found end of line after {}",
                    quote(label),
                    quote(&cur.line[start..])
                ))
            }
        }
    }
}

/// Parses a sample value the way Go's `strconv.ParseFloat(s, 64)` does, less
/// the hexadecimal and `_` forms Prometheus refuses. The error is a short
/// reason appended to the message, empty for plain bad syntax. `token` is
/// never empty.
fn parse_float(token: &str) -> Result<f64, &'static str> {
    let (negative, unsigned) = match token.as_bytes()[0] {
        b'+' => (false, &token[1..]),
        b'-' => (true, &token[1..]),
        _ => (false, token),
    };
    // Go: "inf" or "infinity" in any case after an optional sign; "nan" in
    // any case and without a sign.
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if token.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    if !is_decimal(unsigned) {
        return Err("");
    }
    // The syntax is checked, and Rust reads every such decimal.
    let value: f64 = token.parse().map_err(|_| "")?;
    if value.is_infinite() {
        // Go answers ErrRange; Prometheus fails the scrape.
        return Err(" (out of range)");
    }
    Ok(value)
}

/// Whether `s` is an unsigned decimal float: digits with an optional `.`
/// and fraction (at least one digit in all), then an optional exponent.
fn is_decimal(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut i = digits(0);
    let mut mantissa = i;
    if b.get(i) == Some(&b'.') {
        let fraction = digits(i + 1);
        i += 1 + fraction;
        mantissa += fraction;
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent = digits(i);
        if exponent == 0 {
            return false;
        }
        i += exponent;
    }
    i == b.len()
}

/// A position in one line. It only ever advances over ASCII bytes or up to
/// an ASCII byte or the end, so it always sits on a char boundary.
struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos == self.line.len()
    }

    /// Consumes `byte` if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes and returns the longest run of bytes satisfying `keep`, which
    /// must reject every non-ASCII byte or accept all of them.
    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let len = self.line.as_bytes()[start..]
            .iter()
            .take_while(|&&b| keep(b))
            .count();
        self.pos += len;
        &self.line[start..self.pos]
    }

    fn skip_blanks(&mut self) {
        self.take_while(is_blank);
    }

    /// "expected WHAT, found REST": the message for a failure here.
    fn expected(&self, what: &str) -> String {
        let mut message = format!("expected {what}, found ");
        if self.at_end() {
            message.push_str("end of line");
        } else {
            message.push_str(&quote(&self.line[self.pos..]));
        }
        message
    }
}

/// `text` double-quoted with Rust escapes (so tabs, quotes and backslashes
/// stay visible), cut to [`QUOTE_CHARS`] characters with a trailing `...`.
fn quote(text: &str) -> String {
    let cut = text
        .char_indices()
        .nth(QUOTE_CHARS)
        .map_or(text.len(), |(at, _)| at);
    let mut quoted = format!("{:?}", &text[..cut]);
    if cut < text.len() {
        quoted.push_str("...");
    }
    quoted
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b':'
}

fn is_name_char(b: u8) -> bool {
    is_name_start(b) || b.is_ascii_digit()
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    is_label_start(b) || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from prometheus-node-exporter 1.5.0 (Debian 12 package,
    /// `curl 127.0.0.1:9100/metrics`), an excerpt of whole metric families.
    const NODE_EXPORTER: &str = r#"# HELP node_context_switches_total Total number of context switches.
# TYPE node_context_switches_total counter
node_context_switches_total 7.316445e+06
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 1818.23
node_cpu_seconds_total{cpu="0",mode="iowait"} 7.07
node_cpu_seconds_total{cpu="0",mode="irq"} 0
node_cpu_seconds_total{cpu="0",mode="nice"} 0
node_cpu_seconds_total{cpu="0",mode="softirq"} 2.2
node_cpu_seconds_total{cpu="0",mode="steal"} 0.37
node_cpu_seconds_total{cpu="0",mode="system"} 200.24
node_cpu_seconds_total{cpu="0",mode="user"} 1954.22
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 7.1952982016e+10
# HELP node_filesystem_device_error Whether an error occurred while getting statistics for the given device.
# TYPE node_filesystem_device_error gauge
node_filesystem_device_error{device="/dev/vda",fstype="ext4",mountpoint="/"} 0
# HELP node_filesystem_files Filesystem total file nodes.
# TYPE node_filesystem_files gauge
node_filesystem_files{device="/dev/vda",fstype="ext4",mountpoint="/"} 1.6777216e+07
# HELP node_filesystem_files_free Filesystem total free file nodes.
# TYPE node_filesystem_files_free gauge
node_filesystem_files_free{device="/dev/vda",fstype="ext4",mountpoint="/"} 1.6344676e+07
# HELP node_filesystem_free_bytes Filesystem free space in bytes.
# TYPE node_filesystem_free_bytes gauge
node_filesystem_free_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 2.4493340672e+11
# HELP node_filesystem_readonly Filesystem read-only status.
# TYPE node_filesystem_readonly gauge
node_filesystem_readonly{device="/dev/vda",fstype="ext4",mountpoint="/"} 0
# HELP node_filesystem_size_bytes Filesystem size in bytes.
# TYPE node_filesystem_size_bytes gauge
node_filesystem_size_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 2.70553174016e+11
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 2.42
# HELP node_load15 15m load average.
# TYPE node_load15 gauge
node_load15 1.32
# HELP node_load5 5m load average.
# TYPE node_load5 gauge
node_load5 1.66
# HELP node_os_info A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.
# TYPE node_os_info gauge
node_os_info{build_id="",id="debian",id_like="",image_id="",image_version="",name="Debian GNU/Linux",pretty_name="Debian GNU/Linux 12 (bookworm)",variant="",variant_id="",version="12 (bookworm)",version_codename="bookworm",version_id="12"} 1
"#;

    /// Captured from Prometheus 2.42 (Debian 12 package), whose own
    /// `/metrics` the Go client library writes: a summary without and with
    /// other labels (NaN quantiles when empty) and a histogram.
    const GO_CLIENT: &str = r#"# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.3846e-05
go_gc_duration_seconds{quantile="0.25"} 4.9554e-05
go_gc_duration_seconds{quantile="0.5"} 0.000122464
go_gc_duration_seconds{quantile="0.75"} 0.000608322
go_gc_duration_seconds{quantile="1"} 0.000608322
go_gc_duration_seconds_sum 0.000804186
go_gc_duration_seconds_count 4
# HELP prometheus_engine_query_duration_seconds Query timings
# TYPE prometheus_engine_query_duration_seconds summary
prometheus_engine_query_duration_seconds{slice="inner_eval",quantile="0.5"} 3.1777e-05
prometheus_engine_query_duration_seconds{slice="inner_eval",quantile="0.9"} 0.000102374
prometheus_engine_query_duration_seconds{slice="inner_eval",quantile="0.99"} 0.000102374
prometheus_engine_query_duration_seconds_sum{slice="inner_eval"} 0.00016476700000000002
prometheus_engine_query_duration_seconds_count{slice="inner_eval"} 3
prometheus_engine_query_duration_seconds{slice="result_sort",quantile="0.5"} NaN
prometheus_engine_query_duration_seconds{slice="result_sort",quantile="0.9"} NaN
prometheus_engine_query_duration_seconds{slice="result_sort",quantile="0.99"} NaN
prometheus_engine_query_duration_seconds_sum{slice="result_sort"} 0
prometheus_engine_query_duration_seconds_count{slice="result_sort"} 0
# HELP prometheus_http_request_duration_seconds Histogram of latencies for HTTP requests.
# TYPE prometheus_http_request_duration_seconds histogram
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="0.1"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="0.2"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="0.4"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="1"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="3"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="8"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="20"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="60"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="120"} 3
prometheus_http_request_duration_seconds_bucket{handler="/api/v1/query",le="+Inf"} 3
prometheus_http_request_duration_seconds_sum{handler="/api/v1/query"} 0.001948172
prometheus_http_request_duration_seconds_count{handler="/api/v1/query"} 3
# HELP prometheus_target_interval_length_seconds Actual intervals between scrapes.
# TYPE prometheus_target_interval_length_seconds summary
prometheus_target_interval_length_seconds{interval="1s",quantile="0.01"} 1.000002024
prometheus_target_interval_length_seconds{interval="1s",quantile="0.05"} 1.000002024
prometheus_target_interval_length_seconds{interval="1s",quantile="0.5"} 1.000231613
prometheus_target_interval_length_seconds{interval="1s",quantile="0.9"} 1.000591163
prometheus_target_interval_length_seconds{interval="1s",quantile="0.99"} 1.000591163
prometheus_target_interval_length_seconds_sum{interval="1s"} 3.0008248
prometheus_target_interval_length_seconds_count{interval="1s"} 3
"#;

    /// The example on the exposition formats page of the Prometheus docs.
    const DOCS_EXAMPLE: &str = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP telemetry_requests_metrics_latency_microseconds A summary of the response latency.
# TYPE telemetry_requests_metrics_latency_microseconds summary
telemetry_requests_metrics_latency_microseconds{quantile="0.01"} 3102
telemetry_requests_metrics_latency_microseconds{quantile="0.05"} 3272
telemetry_requests_metrics_latency_microseconds{quantile="0.5"} 4773
telemetry_requests_metrics_latency_microseconds{quantile="0.9"} 9001
telemetry_requests_metrics_latency_microseconds{quantile="0.99"} 76656
telemetry_requests_metrics_latency_microseconds_sum 1.7560473e+07
telemetry_requests_metrics_latency_microseconds_count 2693
"#;

    fn sample(name: &str, labels: &[(&str, &str)], value: f64, ts: Option<i64>) -> PromSample {
        PromSample {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            value,
            timestamp_ms: ts,
        }
    }

    fn find<'a>(samples: &'a [PromSample], name: &str, labels: &[(&str, &str)]) -> &'a PromSample {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|&(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
    }

    fn parse_err(text: &str) -> PromError {
        match parse(text) {
            Ok(samples) => panic!("parsed {text:?} into {samples:?}"),
            Err(err) => err,
        }
    }

    fn value(text: &str) -> f64 {
        let line = format!("m {text}\n");
        match parse(&line) {
            Ok(samples) => samples[0].value,
            Err(err) => panic!("{text:?}: {err}"),
        }
    }

    #[test]
    fn node_exporter_excerpt() {
        let samples = parse(NODE_EXPORTER).unwrap();
        assert_eq!(samples.len(), 20);
        assert_eq!(
            samples[0],
            sample("node_context_switches_total", &[], 7.316445e6, None)
        );
        assert_eq!(
            *find(&samples, "node_filesystem_avail_bytes", &[]),
            sample(
                "node_filesystem_avail_bytes",
                &[
                    ("device", "/dev/vda"),
                    ("fstype", "ext4"),
                    ("mountpoint", "/")
                ],
                71_952_982_016.0,
                None
            )
        );
        assert_eq!(find(&samples, "node_load1", &[]).value, 2.42);
        assert_eq!(
            find(&samples, "node_cpu_seconds_total", &[("mode", "user")]).value,
            1954.22
        );
        let os = find(&samples, "node_os_info", &[]);
        assert_eq!(os.labels.len(), 12);
        assert_eq!(os.labels[0], ("build_id".to_owned(), String::new()));
        assert_eq!(
            os.labels[6],
            (
                "pretty_name".to_owned(),
                "Debian GNU/Linux 12 (bookworm)".to_owned()
            )
        );
    }

    #[test]
    fn go_client_histogram_and_summaries() {
        let samples = parse(GO_CLIENT).unwrap();
        assert_eq!(samples.len(), 36);

        let buckets: Vec<&PromSample> = samples
            .iter()
            .filter(|s| s.name == "prometheus_http_request_duration_seconds_bucket")
            .collect();
        assert_eq!(buckets.len(), 10);
        assert_eq!(
            *buckets[9],
            sample(
                "prometheus_http_request_duration_seconds_bucket",
                &[("handler", "/api/v1/query"), ("le", "+Inf")],
                3.0,
                None
            )
        );
        assert_eq!(
            *find(
                &samples,
                "prometheus_http_request_duration_seconds_sum",
                &[]
            ),
            sample(
                "prometheus_http_request_duration_seconds_sum",
                &[("handler", "/api/v1/query")],
                0.001948172,
                None
            )
        );
        assert_eq!(
            find(
                &samples,
                "prometheus_http_request_duration_seconds_count",
                &[]
            )
            .value,
            3.0
        );

        assert_eq!(
            *find(&samples, "go_gc_duration_seconds", &[("quantile", "0.5")]),
            sample(
                "go_gc_duration_seconds",
                &[("quantile", "0.5")],
                0.000122464,
                None
            )
        );
        assert_eq!(
            find(&samples, "go_gc_duration_seconds_count", &[]).value,
            4.0
        );
        let interval = find(
            &samples,
            "prometheus_target_interval_length_seconds",
            &[("quantile", "0.99")],
        );
        assert_eq!(
            interval.labels,
            [
                ("interval".to_owned(), "1s".to_owned()),
                ("quantile".to_owned(), "0.99".to_owned())
            ]
        );
        let empty = find(
            &samples,
            "prometheus_engine_query_duration_seconds",
            &[("slice", "result_sort"), ("quantile", "0.9")],
        );
        assert!(empty.value.is_nan());
        assert_eq!(
            find(
                &samples,
                "prometheus_engine_query_duration_seconds_sum",
                &[("slice", "inner_eval")]
            )
            .value,
            0.00016476700000000002
        );
    }

    #[test]
    fn docs_example() {
        let samples = parse(DOCS_EXAMPLE).unwrap();
        assert_eq!(samples.len(), 20);
        assert_eq!(
            samples[1],
            sample(
                "http_requests_total",
                &[("method", "post"), ("code", "400")],
                3.0,
                Some(1_395_066_363_000)
            )
        );
        assert_eq!(
            samples[2],
            sample(
                "msdos_file_access_time_seconds",
                &[
                    ("path", r"C:\DIR\FILE.TXT"),
                    ("error", "Cannot find file:\n\"FILE.TXT\"")
                ],
                1_458_255_915.0,
                None
            )
        );
        assert_eq!(
            samples[3],
            sample("metric_without_timestamp_and_labels", &[], 12.47, None)
        );
        assert_eq!(
            samples[4],
            sample(
                "something_weird",
                &[("problem", "division by zero")],
                f64::INFINITY,
                Some(-3_982_045)
            )
        );
        assert_eq!(samples[10].labels, [("le".to_owned(), "+Inf".to_owned())]);
        assert_eq!(samples[10].value, 144_320.0);
        assert_eq!(
            samples[19],
            sample(
                "telemetry_requests_metrics_latency_microseconds_count",
                &[],
                2693.0,
                None
            )
        );
        assert_eq!(samples[18].value, 17_560_473.0);
    }

    #[test]
    fn values_as_go_parse_float_reads_them() {
        for text in ["Nan", "NaN", "nan", "NAN"] {
            assert!(value(text).is_nan(), "{text}");
        }
        for text in ["+Inf", "Inf", "inf", "+inf", "INF", "Infinity", "+infinity"] {
            assert_eq!(value(text), f64::INFINITY, "{text}");
        }
        for text in ["-Inf", "-inf", "-Infinity"] {
            assert_eq!(value(text), f64::NEG_INFINITY, "{text}");
        }
        let cases = [
            ("0", 0.0),
            ("-0", 0.0),
            ("42", 42.0),
            ("+42", 42.0),
            ("08", 8.0),
            ("-1.5", -1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E+3", 1000.0),
            ("2.5e-3", 0.0025),
            ("1.e2", 100.0),
            ("1.7976931348623157e308", f64::MAX),
            ("1e-400", 0.0),
        ];
        for (text, want) in cases {
            assert_eq!(value(text), want, "{text}");
        }
        assert!(value("-0").is_sign_negative());
    }

    #[test]
    fn values_go_or_prometheus_refuse() {
        for text in [
            "+NaN",
            "-nan",
            "infinit",
            "Infinityy",
            "in",
            "0x1p-3",
            "0x10",
            "1_000",
            "1e",
            "1e+",
            "e5",
            ".",
            "-",
            "+",
            "1.2.3",
            "1,5",
            "12abc",
            "true",
            "1e400",
            "-1e400",
        ] {
            let err = parse_err(&format!("m {text}\n"));
            assert_eq!(err.line, 1, "{text}");
            assert!(
                err.message.starts_with("expected a float sample value"),
                "{text}: {}",
                err.message
            );
        }
        assert!(parse_err("m 1e400\n").message.ends_with("(out of range)"));
    }

    #[test]
    fn timestamps() {
        let samples = parse("a 1 0\nb 1 -5\nc 1 +7\nd 2 9223372036854775807\n").unwrap();
        let ts: Vec<Option<i64>> = samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(ts, [Some(0), Some(-5), Some(7), Some(i64::MAX)]);

        let err = parse_err("metric{label=\"bla\"} 3.14 2.72\n");
        assert_eq!(err.line, 1);
        assert_eq!(
            err.message,
            "expected an integer timestamp in milliseconds, found \"2.72\""
        );
        assert!(parse_err("m 1 9223372036854775808\n")
            .message
            .starts_with("expected an integer timestamp"));
        assert_eq!(
            parse_err("m 1 2 3\n").message,
            "expected end of line after the timestamp, found \"3\""
        );
    }

    #[test]
    fn whitespace_crlf_commas_and_comments() {
        let text = concat!(
            "# HELP weird_help A docstring with escapes: C:\\\\temp, \"quoted\", line\\nbreak \\ and more\r\n",
            "# TYPE weird_help gauge\r\n",
            "#\r\n",
            "#no space after the hash, still a comment\r\n",
            "   # indented comment\r\n",
            " \t \r\n",
            "\tweird_help\t{ a = \"1\" ,\tb=\"x y\", } \t 4 \t 17 \t\r\n",
            "empty_braces{} 5\r\n",
            "trailing_comma{only=\"one\",} 6\r\n",
            "no_space{a=\"}\"}7\r\n",
            "colon:name:x 8\r\n",
            "__underscored{_l=\"\",l_2=\"\u{00e9}t\u{00e9} \u{1f525}\"} 9\r\n",
            "last_line_without_newline 10",
        );
        let samples = parse(text).unwrap();
        assert_eq!(
            samples,
            [
                sample("weird_help", &[("a", "1"), ("b", "x y")], 4.0, Some(17)),
                sample("empty_braces", &[], 5.0, None),
                sample("trailing_comma", &[("only", "one")], 6.0, None),
                sample("no_space", &[("a", "}")], 7.0, None),
                sample("colon:name:x", &[], 8.0, None),
                sample(
                    "__underscored",
                    &[("_l", ""), ("l_2", "\u{00e9}t\u{00e9} \u{1f525}")],
                    9.0,
                    None
                ),
                sample("last_line_without_newline", &[], 10.0, None),
            ]
        );
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse("\n\n# only comments\n").unwrap(), []);
    }

    #[test]
    fn label_value_escapes() {
        let samples = parse(r#"m{a="\\",b="\"",c="\n",d="x\\n",e="\\\"\n"} 1"#).unwrap();
        let values: Vec<&str> = samples[0].labels.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(values, ["\\", "\"", "\n", "x\\n", "\\\"\n"]);

        let err = parse_err("m{label=\"\\t\"} 3.14\n");
        assert_eq!(
            err.message,
            r#"expected an escape \\, \" or \n in the value of label "label", found "\\t\"} 3.14""#
        );
        assert_eq!(
            parse_err(r#"m{a="tail\"} 1"#).message,
            r#"expected '"' closing the value of label "a", found end of line after "tail\\\"} 1""#
        );
    }

    #[test]
    fn unterminated_label_value() {
        let text = concat!(
            "# HELP node_filesystem_avail_bytes Filesystem space available.\n",
            "# TYPE node_filesystem_avail_bytes gauge\n",
            "node_filesystem_avail_bytes{device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/} 7.1e+10\n",
            "node_load1 2.42\n",
        );
        let err = parse_err(text);
        assert_eq!(err.line, 3);
        assert_eq!(
            err.message,
            r#"expected '"' closing the value of label "mountpoint", found end of line after "/} 7.1e+10""#
        );
        assert_eq!(
            err.to_string(),
            format!("line 3: {}", err.message),
            "Display is line: message"
        );
    }

    #[test]
    fn missing_value() {
        let err = parse_err("up 1\n\n# TYPE node_load1 gauge\nnode_load1\nnode_load5 1\n");
        assert_eq!(err.line, 4);
        assert_eq!(err.message, "expected a sample value, found end of line");

        let err = parse_err("a 1\r\nb{x=\"y\"}  \r\n");
        assert_eq!(err.line, 2);
        assert_eq!(err.message, "expected a sample value, found end of line");
    }

    #[test]
    fn bad_float() {
        let err = parse_err(concat!(
            "node_load1 2.42\n",
            "node_load5 1.66\n",
            "\n",
            "node_load15 1,32\n",
        ));
        assert_eq!(err.line, 4);
        assert_eq!(
            err.message,
            "expected a float sample value (e.g. 12, 1.5e-3, NaN, +Inf), found \"1,32\""
        );
        assert_eq!(parse_err("metric{label=\"bla\"} blubb\n").line, 1);
    }

    #[test]
    fn bad_metric_name() {
        let err = parse_err("ok 1\nmet-ric 2\n");
        assert_eq!(err.line, 2);
        assert_eq!(
            err.message,
            r#"expected '{' or whitespace after metric name "met", found "-ric 2""#
        );

        let err = parse_err("ok 1\n\n1metric 2\n");
        assert_eq!(err.line, 3);
        assert_eq!(
            err.message,
            r#"expected a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), found "1metric 2""#
        );

        for text in [
            "{label=\"bla\"} 3.14\n",
            "{\"quoted.utf8.name\"} 1\n",
            "@invalidmetric 1\n",
            "métrique 1\n",
        ] {
            assert_eq!(parse_err(text).line, 1, "{text}");
        }
        assert!(parse_err("métrique 1\n").message.contains("\"m\""));
    }

    #[test]
    fn malformed_label_sets() {
        let cases = [
            ("m{@=\"bla\"} 1", "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) or '}', found \"@=\\\"bla\\\"} 1\""),
            ("m{1a=\"bla\"} 1", "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) or '}', found \"1a=\\\"bla\\\"} 1\""),
            ("m{label+=\"bla\"} 1", "expected '=' after label name \"label\", found \"+=\\\"bla\\\"} 1\""),
            ("m{label=bla} 1", "expected '\"' opening the value of label \"label\", found \"bla} 1\""),
            ("m{a=\"1\" b=\"2\"} 1", "expected ',' or '}' after the value of label \"a\", found \"b=\\\"2\\\"} 1\""),
            ("m{a=\"1\"+} 1", "expected ',' or '}' after the value of label \"a\", found \"+} 1\""),
            ("m{a=\"1\"", "expected ',' or '}' after the value of label \"a\", found end of line"),
            ("m{a=\"1\",,} 1", "expected a label name ([a-zA-Z_][a-zA-Z0-9_]*) or '}', found \",} 1\""),
            ("m{a=\"1\",a=\"2\"} 1", "label \"a\" appears twice"),
        ];
        for (line, want) in cases {
            let err = parse_err(&format!("# TYPE m gauge\n{line}\n"));
            assert_eq!(
                err,
                PromError {
                    line: 2,
                    message: want.to_owned()
                },
                "{line}"
            );
        }
    }

    #[test]
    fn error_quotes_are_cut() {
        let long = format!("m{{a=\"{}", "x".repeat(200));
        let err = parse_err(&long);
        let quoted = format!("\"{}\"...", "x".repeat(QUOTE_CHARS));
        assert!(err.message.ends_with(&quoted), "{}", err.message);
        assert!(err.message.len() < 160);

        // Cut on characters, not bytes.
        let err = parse_err(&format!("m {}", "\u{00e9}".repeat(100)));
        assert!(err
            .message
            .ends_with(&format!("\"{}\"...", "\u{00e9}".repeat(QUOTE_CHARS))));
    }

    #[test]
    fn matches_globs() {
        assert!(matches("up", "up"));
        assert!(!matches("up", "upx"));
        assert!(!matches("up", "xup"));
        assert!(!matches("up", ""));

        assert!(matches(
            "node_filesystem_*_bytes",
            "node_filesystem_avail_bytes"
        ));
        assert!(matches(
            "node_filesystem_*_bytes",
            "node_filesystem_size_bytes"
        ));
        assert!(!matches("node_filesystem_*_bytes", "node_filesystem_files"));
        assert!(!matches(
            "node_filesystem_*_bytes",
            "node_filesystem_avail_bytes_total"
        ));

        assert!(matches("*_total", "node_context_switches_total"));
        assert!(matches("*_total", "_total"));
        assert!(!matches("*_total", "node_load1"));
        assert!(matches("node_*", "node_"));
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("**", "x"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));

        // Backtracking: the star must not stop at the first "_bucket".
        assert!(matches("*_bucket", "a_bucket_b_bucket"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("*a*a*a*", "aaa"));
        assert!(!matches("*a*a*a*", "aa"));
        // `?`, `[`, `.` and the like are literal.
        assert!(matches("a?c", "a?c"));
        assert!(!matches("a?c", "abc"));
        assert!(matches("go_*", "go_gc_duration_seconds"));

        let samples = parse(NODE_EXPORTER).unwrap();
        let fs: Vec<&str> = samples
            .iter()
            .filter(|s| matches("node_filesystem_*_bytes", &s.name))
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            fs,
            [
                "node_filesystem_avail_bytes",
                "node_filesystem_free_bytes",
                "node_filesystem_size_bytes"
            ]
        );
    }
}
