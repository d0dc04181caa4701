//! The progress line fetch draws on a terminal while a body arrives, as curl and wget do:
//! bytes so far, the total and percentage when Content-Length gives them, the rate and the
//! time left, redrawn a few times a second (also while nothing arrives, so a stall shows).
//!
//! It is drawn only where a person watches: stderr a terminal (and `TERM` not `dumb`), and
//! neither `-q` nor `--no-progress`. A script that reads stderr from a pipe or a file never
//! sees a byte of it. indicatif lays it out: it fits it to the terminal's width, rate-limits
//! redraws and estimates the time left, which is more than this crate should keep itself.
//! Each redraw is then queued on the one stderr writer ([`crate::console`]) as one entry, so
//! that it keeps its place among the header, log and trace lines and never splits one.
//!
//! The line stays when the body is complete, showing the total and the average rate; a
//! download that fails clears it, so the error is the last word on the screen.

use std::fmt;
use std::io::{self, IsTerminal};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use super::response::Head;

/// Redraws per second, at most.
const REDRAWS_PER_SECOND: u8 = 5;
/// A redraw at least this often, when no byte arrives (rate and time left change anyway).
const TICK: Duration = Duration::from_millis(250);
/// With a known total: bytes, total, percentage, a bar, rate, time left.
const WITH_TOTAL: &str =
    "{bytes:>10} / {total_bytes:<10} {percent:>3}% [{bar:24}] {binary_bytes_per_sec:>12}  {eta} left";
/// The finished line with a known total: how long it took instead of the time left.
const DONE_WITH_TOTAL: &str =
    "{bytes:>10} / {total_bytes:<10} {percent:>3}% [{bar:24}] {binary_bytes_per_sec:>12}  in {elapsed}";
/// Without: bytes, rate, time so far.
const WITHOUT_TOTAL: &str = "{spinner} {bytes:>10}  {binary_bytes_per_sec:>12}  {elapsed}";

/// The progress line of one body, or nothing.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// No line at all.
    pub fn off() -> Progress {
        Progress(None)
    }

    /// A line for a body of `total` bytes (`None`: unknown), drawn on stderr when `wanted`
    /// and stderr is a terminal; nothing otherwise.
    pub fn start(total: Option<u64>, wanted: bool) -> Progress {
        if !wanted || !io::stderr().is_terminal() || is_dumb() {
            return Progress::off();
        }
        let template = if total.is_some() {
            WITH_TOTAL
        } else {
            WITHOUT_TOTAL
        };
        let Ok(style) = ProgressStyle::with_template(template) else {
            return Progress::off();
        };
        let target = ProgressDrawTarget::term_like_with_hz(
            Box::new(ConsoleTerm::default()),
            REDRAWS_PER_SECOND,
        );
        let bar =
            ProgressBar::with_draw_target(total, target).with_style(style.progress_chars("=> "));
        bar.enable_steady_tick(TICK);
        Progress(Some(bar))
    }

    /// `n` more bytes of the body have been written.
    pub fn advance(&self, n: usize) {
        if let Some(bar) = &self.0 {
            bar.inc(n as u64);
        }
    }

    /// The body is complete: the line is drawn a last time and left on the screen, the
    /// cursor on the next line (indicatif leaves it at the end of the line).
    pub fn finish(self) {
        if let Some(bar) = &self.0 {
            if bar.length().is_some() {
                if let Ok(style) = ProgressStyle::with_template(DONE_WITH_TOTAL) {
                    bar.set_style(style.progress_chars("=> "));
                }
            }
            bar.finish();
            crate::console::print(b"\n");
        }
    }
}

/// A terminal without cursor control (`TERM` unset or `dumb`) would show every redraw as a
/// line of its own.
fn is_dumb() -> bool {
    std::env::var_os("TERM").is_none_or(|term| term == "dumb")
}

/// indicatif's terminal: the size is stderr's, and what a redraw writes is gathered and
/// queued on the console as one entry when indicatif flushes it.
#[derive(Default)]
struct ConsoleTerm {
    pending: Mutex<Vec<u8>>,
}

impl ConsoleTerm {
    fn push(&self, bytes: &[u8]) -> io::Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.extend_from_slice(bytes);
        Ok(())
    }

    fn escape(&self, n: usize, code: char) -> io::Result<()> {
        match n {
            0 => Ok(()),
            n => self.push(format!("\x1b[{n}{code}").as_bytes()),
        }
    }
}

impl fmt::Debug for ConsoleTerm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConsoleTerm")
    }
}

impl TermLike for ConsoleTerm {
    fn width(&self) -> u16 {
        ::console::Term::stderr().size().1
    }

    fn height(&self) -> u16 {
        ::console::Term::stderr().size().0
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.escape(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.escape(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.escape(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.escape(n, 'D')
    }

    fn write_line(&self, line: &str) -> io::Result<()> {
        self.push(line.as_bytes())?;
        self.push(b"\n")
    }

    fn write_str(&self, text: &str) -> io::Result<()> {
        self.push(text.as_bytes())
    }

    fn clear_line(&self) -> io::Result<()> {
        self.push(b"\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        let drawn =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if !drawn.is_empty() {
            crate::console::print(drawn);
        }
        Ok(())
    }
}

/// The body's length, when the head gives it: Content-Length, unless the body is chunked
/// (then the chunks decide) or the status has no body.
pub fn total(head: &Head) -> Option<u64> {
    if matches!(head.status(), 204 | 304) {
        return Some(0);
    }
    if head.field("Transfer-Encoding").is_some() {
        return None;
    }
    head.field("Content-Length")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::response::{Event, ResponseReader};

    fn head(raw: &str) -> Head {
        match ResponseReader::new().feed(raw.as_bytes()) {
            Ok((_, Some(Event::Head(head)))) => head,
            other => panic!("no head in {raw:?}: {other:?}"),
        }
    }

    #[test]
    fn the_total_is_content_length_unless_chunked_or_bodiless() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n",
                Some(8192),
            ),
            ("HTTP/1.1 200 OK\r\ncontent-length:  7 \r\n\r\n", Some(7)),
            ("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", None),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                None,
            ),
            (
                "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
                Some(0),
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                Some(0),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(total(&head(raw)), want, "{raw:?}");
        }
    }

    #[test]
    fn an_unwanted_line_is_never_drawn() {
        assert!(Progress::start(Some(1), false).0.is_none());
    }
}
