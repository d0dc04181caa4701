//! Where a fetched body goes, and the promise that a failed download leaves nothing behind.
//!
//! A regular file is written under a temporary name beside its final one and renamed into
//! place only once the body is complete, so an existing file is never half overwritten and a
//! truncated download never looks like a finished one. A file that is not regular (a FIFO,
//! `/dev/null`, a terminal) is written in place: renaming onto it would replace the node
//! itself. A default name never replaces anything: the body is linked in under the first
//! free name of `index.html`, `index.html.1`, `index.html.2`, ... as wget does. SIGINT and
//! SIGTERM remove the temporary file before the process exits.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::net::IoContext;

/// Writes are gathered into blocks this large: few system calls, constant memory.
const WRITE_BUFFER: usize = 64 * 1024;
/// Suffixes tried for a default name (`.1` to `.MAX_SUFFIX`).
const MAX_SUFFIX: u32 = 9999;
/// Temporary names tried before giving up (another process may hold one).
const MAX_TEMP_TRIES: u32 = 100;

/// The temporary file being written, if any: what a signal must remove.
static PARTIAL: Mutex<Option<PathBuf>> = Mutex::new(None);

fn partial() -> MutexGuard<'static, Option<PathBuf>> {
    PARTIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts a thread that, on SIGINT or SIGTERM, removes the temporary file and exits with
/// 128 + the signal number (130, 143), as a shell reports a process killed by it.
pub fn remove_partial_on_signal() -> anyhow::Result<()> {
    crate::signals::on_interrupt(|signal| {
        if let Some(path) = partial().take() {
            let _ = fs::remove_file(path);
        }
        std::process::exit(128 + signal);
    })
}

/// Where the body should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `-o -`.
    Stdout,
    /// `-o FILE`: replaced if it exists, like curl.
    Given(PathBuf),
    /// A name made from the URL: never replaces an existing file.
    Default(PathBuf),
}

/// An open destination that the body is streamed into.
pub struct Output {
    sink: Sink,
    name: String,
    written: u64,
}

enum Sink {
    Stdout(BufWriter<io::Stdout>),
    InPlace(BufWriter<File>),
    Temp {
        file: BufWriter<File>,
        temp: TempFile,
        dest: PathBuf,
        overwrite: bool,
    },
}

impl Output {
    /// Opens the destination: a temporary file beside a regular one, the node itself
    /// otherwise.
    pub fn open(destination: &Destination) -> anyhow::Result<Output> {
        let (sink, name) = match destination {
            Destination::Stdout => (Sink::Stdout(buffered(io::stdout())), "stdout".into()),
            Destination::Given(path) => (open_given(path)?, path.display().to_string()),
            Destination::Default(path) => (open_temp(path, false)?, path.display().to_string()),
        };
        Ok(Output {
            sink,
            name,
            written: 0,
        })
    }

    /// Appends body bytes.
    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let writer: &mut dyn Write = match &mut self.sink {
            Sink::Stdout(out) => out,
            Sink::InPlace(file) | Sink::Temp { file, .. } => file,
        };
        let name = &self.name;
        writer
            .write_all(bytes)
            .io_context(|| format!("cannot write to {name}"))?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// The body is complete: flush it and put the file in place. Returns the number of
    /// bytes and the name the file got.
    pub fn finish(self) -> anyhow::Result<(u64, String)> {
        let name = self.name;
        let flush = |writer: &mut dyn Write| {
            writer
                .flush()
                .io_context(|| format!("cannot write to {name}"))
        };
        let name = match self.sink {
            Sink::Stdout(mut out) => flush(&mut out).map(|()| name.clone())?,
            Sink::InPlace(mut file) => flush(&mut file).map(|()| name.clone())?,
            Sink::Temp {
                mut file,
                temp,
                dest,
                overwrite,
            } => {
                flush(&mut file)?;
                drop(file);
                temp.persist(&dest, overwrite)?.display().to_string()
            }
        };
        Ok((self.written, name))
    }
}

fn buffered<W: Write>(writer: W) -> BufWriter<W> {
    BufWriter::with_capacity(WRITE_BUFFER, writer)
}

/// `-o FILE`: in place when FILE exists and is not a regular file, else through a
/// temporary file. A symbolic link to a regular file keeps pointing where it did: the file
/// it points to is the one replaced.
fn open_given(path: &Path) -> anyhow::Result<Sink> {
    let is_link = fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink());
    let path = match is_link {
        true => fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        false => path.to_path_buf(),
    };
    match fs::metadata(&path) {
        Ok(meta) if !meta.is_file() => {
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .io_context(|| format!("cannot open {} for writing", path.display()))?;
            Ok(Sink::InPlace(buffered(file)))
        }
        _ => open_temp(&path, true),
    }
}

fn open_temp(dest: &Path, overwrite: bool) -> anyhow::Result<Sink> {
    let (temp, file) = TempFile::create(dest)?;
    Ok(Sink::Temp {
        file: buffered(file),
        temp,
        dest: dest.to_path_buf(),
        overwrite,
    })
}

/// A file that exists only until it is persisted: dropped, it is removed.
struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// A new, empty, hidden file beside `dest`, registered for removal on a signal.
    fn create(dest: &Path) -> anyhow::Result<(TempFile, File)> {
        let dir = dest.parent().filter(|dir| !dir.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let base: String = dest
            .file_name()
            .map(|name| name.to_string_lossy().chars().take(100).collect())
            .unwrap_or_default();
        for n in 0..MAX_TEMP_TRIES {
            let path = dir.join(format!(".{base}.{}-{n}.part", std::process::id()));
            let mut registered = partial();
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    *registered = Some(path.clone());
                    let temp = TempFile {
                        path,
                        persisted: false,
                    };
                    return Ok((temp, file));
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err).io_context(|| temp_error(dir)),
            }
        }
        Err(io::ErrorKind::AlreadyExists.into()).io_context(|| temp_error(dir))
    }

    /// Puts the file at `dest` (replacing it when `overwrite`, else under the first free
    /// name of `dest`, `dest.1`, ...) and returns where it went.
    fn persist(mut self, dest: &Path, overwrite: bool) -> anyhow::Result<PathBuf> {
        let mut registered = partial();
        let result = if overwrite {
            keep_permissions(dest, &self.path);
            fs::rename(&self.path, dest).map(|()| dest.to_path_buf())
        } else {
            link_unique(&self.path, dest)
        };
        let placed = result.io_context(|| format!("cannot save {}", dest.display()))?;
        self.persisted = true;
        *registered = None;
        Ok(placed)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let mut registered = partial();
            let _ = fs::remove_file(&self.path);
            *registered = None;
        }
    }
}

fn temp_error(dir: &Path) -> String {
    format!("cannot create a temporary file in {}", dir.display())
}

/// A replaced file keeps its mode, as it would had it been overwritten in place.
fn keep_permissions(old: &Path, new: &Path) {
    if let Ok(meta) = fs::metadata(old) {
        let _ = fs::set_permissions(new, meta.permissions());
    }
}

/// Links `temp` in under the first of `dest`, `dest.1`, `dest.2`, ... that does not exist
/// (a hard link fails rather than replace, so two downloads never take the same name), then
/// removes `temp`. Where hard links are not supported, it renames onto a name seen free.
fn link_unique(temp: &Path, dest: &Path) -> io::Result<PathBuf> {
    for candidate in candidates(dest) {
        match fs::hard_link(temp, &candidate) {
            Ok(()) => {
                let _ = fs::remove_file(temp);
                return Ok(candidate);
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if fs::symlink_metadata(&candidate).is_err() => {
                fs::rename(temp, &candidate)?;
                return Ok(candidate);
            }
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("every name up to .{MAX_SUFFIX} is taken"),
    ))
}

/// `dest`, then `dest.1` to `dest.MAX_SUFFIX`.
fn candidates(dest: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    let numbered = (1..=MAX_SUFFIX).map(move |n| {
        let mut name = OsString::from(dest.as_os_str());
        name.push(format!(".{n}"));
        PathBuf::from(name)
    });
    std::iter::once(dest.to_path_buf()).chain(numbered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn save(destination: &Destination, body: &[u8]) -> (u64, String) {
        let mut output = Output::open(destination).unwrap();
        output.write(body).unwrap();
        output.finish().unwrap()
    }

    #[test]
    fn default_names_never_replace_a_file() {
        let dir = TempDir::new("default-names");
        let dest = Destination::Default(dir.path().join("index.html"));
        for body in [&b"one"[..], b"two", b"three"] {
            save(&dest, body);
        }
        assert_eq!(
            names_in(dir.path()),
            ["index.html", "index.html.1", "index.html.2"]
        );
        assert_eq!(fs::read(dir.path().join("index.html.2")).unwrap(), b"three");
        assert_eq!(fs::read(dir.path().join("index.html")).unwrap(), b"one");
    }

    #[test]
    fn a_given_name_is_replaced_only_when_the_body_is_complete() {
        let dir = TempDir::new("given-name");
        let path = dir.path().join("out");
        fs::write(&path, b"old").unwrap();
        let mut output = Output::open(&Destination::Given(path.clone())).unwrap();
        output.write(b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names_in(dir.path()).len(), 2, "a temporary file beside it");
        assert_eq!(output.finish().unwrap(), (3, path.display().to_string()));
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names_in(dir.path()), ["out"]);
    }

    #[test]
    fn an_unfinished_output_leaves_nothing_behind() {
        let dir = TempDir::new("unfinished");
        let path = dir.path().join("out");
        fs::write(&path, b"old").unwrap();
        for destination in [
            Destination::Given(path.clone()),
            Destination::Default(path.clone()),
        ] {
            let mut output = Output::open(&destination).unwrap();
            output.write(b"partial").unwrap();
            drop(output);
        }
        assert_eq!(names_in(dir.path()), ["out"]);
        assert_eq!(fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn a_missing_directory_is_named_in_the_error() {
        let dir = TempDir::new("missing-dir");
        let path = dir.path().join("no/such/out");
        let err = Output::open(&Destination::Given(path)).err().unwrap();
        let message = format!("{err:#}");
        assert!(
            message.starts_with("cannot create a temporary file in "),
            "{message}"
        );
        assert!(
            message.ends_with("no/such: no such file or directory"),
            "{message}"
        );
    }
}
