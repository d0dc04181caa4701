//! Reads `--trace` output back: the events on a program's stderr, each with the label of its
//! connection, its marker line and the bytes its dump rows show, so that tests can compare
//! what was traced with what really crossed the socket. Log lines are skipped.

/// One traced event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `127.0.0.1:50548` for a line that began `[127.0.0.1:50548] `.
    pub label: Option<String>,
    /// `== connect ...`, `=> send 7 bytes`, `<= recv 15 bytes`, ...
    pub marker: String,
    /// The bytes of the dump rows under the marker.
    pub bytes: Vec<u8>,
    /// The dump ended with a `... N more bytes not shown` line.
    pub cut: bool,
}

impl Event {
    /// N of `=> send N bytes`.
    pub fn sent(&self) -> Option<usize> {
        count(&self.marker, "=> send ")
    }

    /// N of `<= recv N bytes`.
    pub fn received(&self) -> Option<usize> {
        count(&self.marker, "<= recv ")
    }
}

fn count(marker: &str, prefix: &str) -> Option<usize> {
    marker
        .strip_prefix(prefix)?
        .strip_suffix(" bytes")?
        .parse()
        .ok()
}

/// A line's label and the rest: `[127.0.0.1:1] == close` gives the address and `== close`. A
/// log line's bracket (`[2026-01-01T00:00:00.000Z INFO ] ...`) holds spaces: not a label.
pub fn split_label(line: &str) -> (Option<&str>, &str) {
    if let Some(rest) = line.strip_prefix('[') {
        if let Some((label, after)) = rest.split_once("] ") {
            if !label.is_empty() && !label.contains(char::is_whitespace) {
                return (Some(label), after);
            }
        }
    }
    (None, line)
}

/// Whether `line` is a log record rather than trace output.
pub fn is_log(line: &str) -> bool {
    line.starts_with('[') && split_label(line).0.is_none()
}

/// Every trace event in `stderr`, in order.
pub fn events(stderr: &str) -> Vec<Event> {
    let mut events: Vec<Event> = Vec::new();
    for line in stderr.lines().filter(|l| !is_log(l)) {
        let (label, rest) = split_label(line);
        let label = label.map(str::to_string);
        if ["== ", "=> ", "<= "].iter().any(|p| rest.starts_with(p)) {
            events.push(Event {
                label,
                marker: rest.to_string(),
                bytes: Vec::new(),
                cut: false,
            });
            continue;
        }
        let Some(event) = events.iter_mut().rev().find(|e| e.label == label) else {
            continue;
        };
        if rest.starts_with("... ") && rest.contains("more bytes not shown") {
            event.cut = true;
        } else if let Some(bytes) = row_bytes(rest) {
            event.bytes.extend(bytes);
        }
    }
    events
}

/// The bytes of one dump row (`0000: 4d 69 ...  Mi...`): the hex column is 47 characters
/// wide after the offset, whatever the row's length.
fn row_bytes(row: &str) -> Option<Vec<u8>> {
    let (offset, rest) = row.split_once(": ")?;
    if offset.len() < 4 || !offset.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let hex = rest.get(..47.min(rest.len()))?;
    hex.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect()
}

/// The events of the connection labelled `label`.
pub fn of(events: &[Event], label: Option<&str>) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.label.as_deref() == label)
        .cloned()
        .collect()
}

/// Everything sent (`=> send`) and everything received (`<= recv`), each joined, checking
/// on the way that every dump is whole and as long as its marker says.
pub fn streams(events: &[Event]) -> (Vec<u8>, Vec<u8>) {
    let (mut sent, mut received) = (Vec::new(), Vec::new());
    for event in events {
        let (n, into) = match (event.sent(), event.received()) {
            (Some(n), _) => (n, &mut sent),
            (_, Some(n)) => (n, &mut received),
            _ => continue,
        };
        assert!(
            !event.cut,
            "a dump was cut (use --trace-bytes 0): {event:?}"
        );
        assert_eq!(event.bytes.len(), n, "{event:?}");
        into.extend_from_slice(&event.bytes);
    }
    (sent, received)
}
