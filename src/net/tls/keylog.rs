//! The TLS session keys, written where `SSLKEYLOGFILE` says, in the NSS key log format that
//! Wireshark reads (`LABEL <client random> <secret>`, hex, one line per secret).
//!
//! rustls has a writer of its own, but it reads `SSLKEYLOGFILE` from the environment itself;
//! this one takes the path from the configuration, so that only the command line reads the
//! environment and the library can be told where to write (a test, another front end). The
//! file is created readable by its owner alone: whoever reads it can decrypt the traffic.
//! A file that cannot be written costs a warning, never the download (as in curl).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The mode a new key log file gets: its owner's alone.
const MODE: u32 = 0o600;

/// A `rustls::KeyLog` that appends to one file, opened on the first secret.
#[derive(Debug)]
pub(super) struct KeyLogFile {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
enum State {
    /// Not opened yet.
    Closed,
    Open(File),
    /// Opening or writing failed once; said once, not tried again.
    Failed,
}

impl KeyLogFile {
    pub(super) fn new(path: &Path) -> KeyLogFile {
        KeyLogFile {
            path: path.to_path_buf(),
            state: Mutex::new(State::Closed),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends `line` as one write, so that two processes sharing the file never interleave
    /// within a line.
    fn append(&self, line: &[u8]) {
        let mut state = self.state();
        if matches!(*state, State::Closed) {
            *state = match open(&self.path) {
                Ok(file) => State::Open(file),
                Err(err) => self.failed(&err),
            };
        }
        if let State::Open(file) = &mut *state {
            if let Err(err) = file.write_all(line) {
                *state = self.failed(&err);
            }
        }
    }

    fn failed(&self, err: &std::io::Error) -> State {
        log::warn!(
            "cannot write TLS keys to {} (SSLKEYLOGFILE): {}",
            self.path.display(),
            crate::net::describe(err)
        );
        State::Failed
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(MODE)
        .open(path)
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        self.append(line(label, client_random, secret).as_bytes());
    }

    fn will_log(&self, _label: &str) -> bool {
        !matches!(*self.state(), State::Failed)
    }
}

/// `LABEL <client random> <secret>\n`, both in lowercase hex.
fn line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    let mut line =
        String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
    line.push_str(label);
    for (separator, bytes) in [(' ', client_random), (' ', secret)] {
        line.push(separator);
        for byte in bytes {
            let _ = write!(line, "{byte:02x}");
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::KeyLog;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_line_is_the_label_and_two_hex_strings() {
        assert_eq!(
            line("CLIENT_RANDOM", &[0x00, 0xab], &[0xff, 0x01, 0x10]),
            "CLIENT_RANDOM 00ab ff0110\n"
        );
    }

    #[test]
    fn secrets_are_appended_to_a_file_only_its_owner_reads() {
        let dir = crate::testing::TempDir::new("keylog");
        let path = dir.join("keys.log");
        std::fs::write(&path, "EARLIER 01 02\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let log = KeyLogFile::new(&path);
        assert!(log.will_log("CLIENT_RANDOM"));
        log.log("CLIENT_RANDOM", &[1], &[2]);
        log.log("SERVER_TRAFFIC_SECRET_0", &[3], &[4]);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            text,
            "EARLIER 01 02\nCLIENT_RANDOM 01 02\nSERVER_TRAFFIC_SECRET_0 03 04\n"
        );
        let fresh = dir.join("fresh.log");
        KeyLogFile::new(&fresh).log("CLIENT_RANDOM", &[1], &[2]);
        let mode = std::fs::metadata(&fresh)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, MODE);
    }

    #[test]
    fn a_file_that_cannot_be_written_is_given_up_quietly() {
        let dir = crate::testing::TempDir::new("keylog-missing");
        let log = KeyLogFile::new(&dir.join("no/such/dir/keys.log"));
        log.log("CLIENT_RANDOM", &[1], &[2]);
        assert!(!log.will_log("CLIENT_RANDOM"));
        log.log("CLIENT_RANDOM", &[1], &[2]);
    }
}
