//! fetch's two time limits on receiving: `--timeout`, the longest wait for the next byte, and
//! `-m`/`--max-time`, one limit on the whole transfer (connects and redirects included).
//!
//! A blocking socket knows only the first kind: a read timeout bounds one receive. The
//! second is kept by shortening that timeout to the time left once the deadline is nearer
//! than the gap, so a receive never waits past it. The socket option is set only when the
//! wait it allows changes, which without `--max-time` is never (the connect set it once), so
//! a transfer without a deadline costs no system call more.

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::net::IoContext;

/// When the whole transfer must be over, if it must be.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    end: Option<Instant>,
    max_time: Duration,
}

impl Deadline {
    /// `max_time` from now (`None`: no limit; a limit too far to represent is none either).
    pub fn new(max_time: Option<Duration>) -> Deadline {
        let end = max_time.and_then(|max| Instant::now().checked_add(max));
        Deadline {
            end,
            max_time: max_time.unwrap_or_default(),
        }
    }

    /// What is left of the transfer's time at `now` (zero once it has passed), `None`
    /// without a limit.
    pub fn left(&self, now: Instant) -> Option<Duration> {
        self.end.map(|end| end.saturating_duration_since(now))
    }

    /// Whether the limit has passed at `now`.
    pub fn passed(&self, now: Instant) -> bool {
        self.left(now).is_some_and(|left| left.is_zero())
    }

    /// The longest the next wait may take at `now`, with `gap` the wait allowed between bytes
    /// (`None`: no such limit): whichever of the two limits is nearer.
    pub fn wait(&self, gap: Option<Duration>, now: Instant) -> Wait {
        match (gap, self.left(now)) {
            (None, None) => Wait::Forever,
            (Some(gap), None) => Wait::Gap(gap),
            (Some(gap), Some(left)) if gap <= left => Wait::Gap(gap),
            (_, Some(left)) => Wait::Left(left),
        }
    }

    /// The time a connect may take at `now`: `given` (zero: the system's own), cut to what
    /// is left; `None` once nothing is left.
    pub fn connect_timeout(&self, given: Duration, now: Instant) -> Option<Duration> {
        match self.left(now) {
            None => Some(given),
            Some(left) if left.is_zero() => None,
            Some(left) if given.is_zero() => Some(left),
            Some(left) => Some(left.min(given)),
        }
    }

    /// The error for a transfer whose time ran out before it could receive.
    pub fn expired(&self) -> TimedOut {
        TimedOut {
            limit: Limit::MaxTime(self.max_time),
            received: None,
        }
    }

    /// The error for a wait that `wait` bound and that ran out, after `received` bytes
    /// (`None` where no byte could have come yet, as in a connect).
    pub fn timed_out(&self, wait: Wait, received: Option<u64>) -> TimedOut {
        let limit = match wait {
            Wait::Gap(gap) => Limit::Gap(gap),
            Wait::Left(_) | Wait::Forever => Limit::MaxTime(self.max_time),
        };
        TimedOut { limit, received }
    }
}

/// The longest a wait may take, and which limit says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Neither limit is set.
    Forever,
    /// `--timeout`: this long without a byte.
    Gap(Duration),
    /// `--max-time`: what is left of the transfer's time.
    Left(Duration),
}

impl Wait {
    /// The socket timeout for this wait (`None`: wait for ever).
    pub fn timeout(self) -> Option<Duration> {
        match self {
            Wait::Forever => None,
            Wait::Gap(d) | Wait::Left(d) => Some(d),
        }
    }
}

/// A limit that ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `--timeout`.
    Gap(Duration),
    /// `-m`/`--max-time`.
    MaxTime(Duration),
}

/// A transfer that ran into one of its limits: which one, and how many bytes had arrived,
/// so that the user knows what to raise and whether anything came at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    /// The limit that ran out.
    pub limit: Limit,
    /// Bytes received on the connection before it did.
    pub received: Option<u64>,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out")?;
        match self.received {
            Some(1) => f.write_str(" after 1 byte")?,
            Some(n) => write!(f, " after {n} bytes")?,
            None => {}
        }
        match self.limit {
            Limit::Gap(gap) => write!(f, ": no byte for {gap:?} (--timeout)"),
            Limit::MaxTime(max) => write!(f, ": the transfer took {max:?} (--max-time)"),
        }
    }
}

impl std::error::Error for TimedOut {}

/// The read timeout of one connection, kept to [`Deadline::wait`] before each receive.
pub struct ReadTimeout {
    /// The socket, where a deadline is set (a handle of its own, so that the stream read
    /// may be any wrapper around it); `None` without a deadline: the timeout never changes.
    socket: Option<TcpStream>,
    gap: Option<Duration>,
    deadline: Deadline,
    /// What the socket's timeout is now.
    current: Option<Duration>,
    /// The wait the next receive is bound by.
    wait: Wait,
}

impl ReadTimeout {
    /// For `socket`, whose read timeout is `gap` since its connect.
    pub fn new(socket: &TcpStream, gap: Option<Duration>, deadline: Deadline) -> io::Result<Self> {
        let socket = match deadline.end {
            Some(_) => Some(socket.try_clone()?),
            None => None,
        };
        Ok(ReadTimeout {
            socket,
            gap,
            deadline,
            current: gap,
            wait: gap.map_or(Wait::Forever, Wait::Gap),
        })
    }

    /// Shortens the socket's timeout to the time left when the deadline is nearer than the
    /// gap; fails with [`TimedOut`] once the deadline has passed (or with the system's error
    /// where the timeout cannot be set, which would leave the deadline unkept).
    pub fn before_recv(&mut self, received: u64) -> anyhow::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        self.wait = self.deadline.wait(self.gap, Instant::now());
        if self.wait == Wait::Left(Duration::ZERO) {
            return Err(self.timed_out(received).into());
        }
        if self.wait.timeout() != self.current {
            socket
                .set_read_timeout(self.wait.timeout())
                .io_context(|| "cannot set the socket's read timeout")?;
            self.current = self.wait.timeout();
        }
        Ok(())
    }

    /// The error for a receive that timed out after `received` bytes.
    pub fn timed_out(&self, received: u64) -> TimedOut {
        self.deadline.timed_out(self.wait, Some(received))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn the_nearer_limit_bounds_the_wait() {
        let now = Instant::now();
        let none = Deadline::new(None);
        assert_eq!(none.wait(None, now), Wait::Forever);
        assert_eq!(none.wait(Some(S), now), Wait::Gap(S));
        assert!(!none.passed(now + 1000 * S));
        let ten = Deadline::new(Some(10 * S));
        let start = ten.end.unwrap() - 10 * S;
        assert_eq!(ten.wait(Some(S), start), Wait::Gap(S));
        assert_eq!(ten.wait(Some(S), start + 9 * S), Wait::Gap(S));
        assert_eq!(ten.wait(Some(2 * S), start + 9 * S), Wait::Left(S));
        assert_eq!(ten.wait(None, start + 4 * S), Wait::Left(6 * S));
        assert_eq!(
            ten.wait(Some(S), start + 11 * S),
            Wait::Left(Duration::ZERO)
        );
        assert!(ten.passed(start + 10 * S));
        assert!(!ten.passed(start + 9 * S));
    }

    #[test]
    fn a_connect_gets_what_is_left_of_the_transfer() {
        let none = Deadline::new(None);
        let now = Instant::now();
        assert_eq!(none.connect_timeout(S, now), Some(S));
        assert_eq!(
            none.connect_timeout(Duration::ZERO, now),
            Some(Duration::ZERO)
        );
        let ten = Deadline::new(Some(10 * S));
        let start = ten.end.unwrap() - 10 * S;
        assert_eq!(ten.connect_timeout(S, start), Some(S));
        assert_eq!(ten.connect_timeout(Duration::ZERO, start), Some(10 * S));
        assert_eq!(ten.connect_timeout(5 * S, start + 8 * S), Some(2 * S));
        assert_eq!(ten.connect_timeout(5 * S, start + 10 * S), None);
    }

    #[test]
    fn a_limit_too_far_to_represent_is_none() {
        let far = Deadline::new(Some(Duration::MAX));
        assert_eq!(far.wait(Some(S), Instant::now()), Wait::Gap(S));
        assert_eq!(far.left(Instant::now()), None);
    }

    #[test]
    fn a_timeout_says_which_limit_and_how_many_bytes() {
        let deadline = Deadline::new(Some(Duration::from_millis(2500)));
        let cases = [
            (
                Wait::Gap(S),
                Some(0),
                "timed out after 0 bytes: no byte for 1s (--timeout)",
            ),
            (
                Wait::Left(S),
                Some(1),
                "timed out after 1 byte: the transfer took 2.5s (--max-time)",
            ),
            (
                Wait::Left(Duration::ZERO),
                None,
                "timed out: the transfer took 2.5s (--max-time)",
            ),
        ];
        for (wait, received, message) in cases {
            assert_eq!(deadline.timed_out(wait, received).to_string(), message);
        }
    }
}
