//! Where a fetched body goes, and the promise that a failed download leaves nothing behind.
//!
//! A regular file is written under a temporary name beside its final one and renamed into
//! place only once the body is complete, so an existing file is never half overwritten and a
//! truncated download never looks like a finished one. A file that is not regular (a FIFO,
//! `/dev/null`, a terminal) is written in place: renaming onto it would replace the node
//! itself. A default name never replaces anything: the body is linked in under the first
//! free name of `index.html`, `index.html.1`, `index.html.2`, ... as wget does. Every
//! terminating signal the process can catch removes the temporary file before it exits.
//!
//! `-o FILE` replaces FILE only as a shell's `>` could: never a file the user may not write,
//! and keeping its mode, owner and group. While it downloads, a temporary file that will
//! replace a file is readable by its owner alone, so the bytes are never readable by anyone
//! the final file would not let read them; a new file gets the mode a `>` would give it
//! (what the umask leaves of 0666) from the start. Where the replaced file's owner and group
//! cannot be given to the temporary file (a user writing another user's file), or the file
//! has other hard links, the finished body is copied into the file in place instead, as `>`
//! writes it.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::net::IoContext;

/// Writes are gathered into blocks this large: few system calls, constant memory.
const WRITE_BUFFER: usize = 64 * 1024;
/// Suffixes tried for a default name (`.1` to `.MAX_SUFFIX`).
const MAX_SUFFIX: u32 = 9999;
/// Temporary names tried before giving up (another process may hold one).
const MAX_TEMP_TRIES: u32 = 100;
/// Symbolic links followed from `-o FILE` before giving up, as Linux's own limit.
const MAX_LINKS: u32 = 40;
/// The mode a new file is created with, as a shell's `>` creates it: the umask takes away
/// what the user does not want others to have.
const NEW_FILE_MODE: u32 = 0o666;
/// The mode of a temporary file that will replace an existing file: its owner's alone until
/// the replaced file's owner, group and mode are given to it, once the body is complete.
const PRIVATE_MODE: u32 = 0o600;

/// The temporary file being written, if any: what a signal must remove.
static PARTIAL: Mutex<Option<PathBuf>> = Mutex::new(None);

fn partial() -> MutexGuard<'static, Option<PathBuf>> {
    PARTIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts a thread that, on any terminating signal the process can catch, removes the
/// temporary file and exits with 128 + the signal number (130 for SIGINT, 143 for SIGTERM,
/// 129 for SIGHUP, ...), as a shell reports a process killed by it. The registration stays
/// locked until the exit, so that no new temporary file can appear in between.
pub fn remove_partial_on_signal() -> anyhow::Result<()> {
    crate::signals::on_interrupt(|signal| {
        let mut registered = partial();
        if let Some(path) = registered.take() {
            let _ = fs::remove_file(path);
        }
        crate::console::exit(128 + signal);
    })
}

/// The body cannot be written where it was asked to go (fetch's exit status 23). Every
/// error that [`Output`] returns carries one as its context, so that a caller can tell a
/// file problem from a network one: `err.downcast_ref::<Unwritable>()`. It reads as the
/// message's "what failed" part (`cannot write to out`); the cause follows in the chain.
#[derive(Debug)]
pub struct Unwritable(String);

impl fmt::Display for Unwritable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `io_context` whose context is an [`Unwritable`].
fn unwritable<T>(result: io::Result<T>, what: impl FnOnce() -> String) -> anyhow::Result<T> {
    result.io_context(|| Unwritable(what()))
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
            Destination::Default(path) => (
                open_temp(path, false, NEW_FILE_MODE)?,
                path.display().to_string(),
            ),
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
        unwritable(writer.write_all(bytes), || {
            format!("cannot write to {name}")
        })?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Hands on what is buffered when someone may be reading as it arrives: stdout, or a
    /// file written in place (a FIFO, a terminal). The caller calls it when the network has
    /// nothing more for now, so that a slow stream shows live while a fast one is still
    /// written in large blocks. A file being saved gains nothing from it.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        let writer: &mut dyn Write = match &mut self.sink {
            Sink::Stdout(out) => out,
            Sink::InPlace(file) => file,
            Sink::Temp { .. } => return Ok(()),
        };
        let name = &self.name;
        unwritable(writer.flush(), || format!("cannot write to {name}"))
    }

    /// The body is complete: flush it and put the file in place. Returns the number of
    /// bytes and the name the file got.
    pub fn finish(self) -> anyhow::Result<(u64, String)> {
        let name = self.name;
        let flush = |writer: &mut dyn Write| {
            unwritable(writer.flush(), || format!("cannot write to {name}"))
        };
        let name = match self.sink {
            Sink::Stdout(mut out) => flush(&mut out).map(|()| name.clone())?,
            Sink::InPlace(mut file) => flush(&mut file).map(|()| name.clone())?,
            Sink::Temp {
                file,
                temp,
                dest,
                overwrite,
            } => {
                let file = file.into_inner().map_err(io::IntoInnerError::into_error);
                let file = unwritable(file, || format!("cannot write to {name}"))?;
                temp.persist(file, &dest, overwrite)?.display().to_string()
            }
        };
        Ok((self.written, name))
    }
}

fn buffered<W: Write>(writer: W) -> BufWriter<W> {
    BufWriter::with_capacity(WRITE_BUFFER, writer)
}

/// `-o FILE`: in place when FILE exists and is not a regular file, else through a
/// temporary file. A symbolic link keeps pointing where it did: the file it points to is
/// the one replaced, or created when the link dangles.
fn open_given(path: &Path) -> anyhow::Result<Sink> {
    let path = unwritable(follow_links(path), || {
        format!("cannot follow the link {}", path.display())
    })?;
    match fs::metadata(&path) {
        Ok(meta) if !meta.is_file() => {
            let file = OpenOptions::new().write(true).open(&path);
            let file = unwritable(file, || {
                format!("cannot open {} for writing", path.display())
            })?;
            Ok(Sink::InPlace(buffered(file)))
        }
        Ok(_) => {
            check_writable(&path)?;
            open_temp(&path, true, PRIVATE_MODE)
        }
        Err(_) => open_temp(&path, true, NEW_FILE_MODE),
    }
}

/// Where `path` leads once every symbolic link is followed, as `open` follows them, also
/// when the last link dangles (a shell's `>` then creates the file it names).
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut path = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                let dir = path.parent().unwrap_or(Path::new(""));
                path = dir.join(target);
            }
            _ => return Ok(path),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// Refuses what a shell's `>` would refuse. Opening the file for writing, without
/// truncating it, asks the system exactly what `>` asks (permissions, a read-only file
/// system, an immutable file), root's privileges included.
fn check_writable(path: &Path) -> anyhow::Result<()> {
    let probe = OpenOptions::new().write(true).open(path);
    unwritable(probe.map(drop), || {
        format!("cannot write to {}", path.display())
    })
}

/// A temporary file for `dest`, created with `mode` (less the umask).
fn open_temp(dest: &Path, overwrite: bool, mode: u32) -> anyhow::Result<Sink> {
    let (temp, file) = TempFile::create(dest, mode)?;
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
    /// A new, empty, hidden file beside `dest`, created with `mode` (less the umask) and
    /// registered for removal on a signal. It is opened for reading too, so that it can be
    /// copied into the file it replaces (see [`TempFile::replace`]).
    fn create(dest: &Path, mode: u32) -> anyhow::Result<(TempFile, File)> {
        let dir = dest.parent().filter(|dir| !dir.as_os_str().is_empty());
        let dir = dir.unwrap_or(Path::new("."));
        let base: String = dest
            .file_name()
            .map(|name| name.to_string_lossy().chars().take(100).collect())
            .unwrap_or_default();
        for n in 0..MAX_TEMP_TRIES {
            let path = dir.join(format!(".{base}.{}-{n}.part", std::process::id()));
            let mut registered = partial();
            let created = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path);
            match created {
                Ok(file) => {
                    *registered = Some(path.clone());
                    let temp = TempFile {
                        path,
                        persisted: false,
                    };
                    return Ok((temp, file));
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return unwritable(Err(err), || temp_error(dir)),
            }
        }
        unwritable(Err(io::ErrorKind::AlreadyExists.into()), || temp_error(dir))
    }

    /// Puts the finished `file` (this temporary file, open) at `dest` (replacing it when
    /// `overwrite`, else under the first free name of `dest`, `dest.1`, ...) and returns
    /// where it went.
    fn persist(mut self, file: File, dest: &Path, overwrite: bool) -> anyhow::Result<PathBuf> {
        let mut registered = partial();
        let result = match fs::metadata(dest) {
            _ if !overwrite => link_unique(&self.path, dest),
            Ok(old) if old.is_file() => self.replace(file, dest, &old).map(|()| dest.into()),
            _ => fs::rename(&self.path, dest).map(|()| dest.into()),
        };
        let placed = unwritable(result, || format!("cannot save {}", dest.display()))?;
        self.persisted = true;
        *registered = None;
        Ok(placed)
    }

    /// Replaces the regular file `dest` (whose metadata is `old`) as `>` would have
    /// overwritten it: same mode, owner and group, and the same file where it has other
    /// names. The temporary file takes its place when it can be given all of that (by its
    /// owner, or by root); otherwise its bytes are copied into `dest`, which cannot be
    /// undone half-way: a disk that fills up during the copy leaves `dest` cut short, as it
    /// would leave a file written by `>`.
    fn replace(&self, mut file: File, dest: &Path, old: &Metadata) -> io::Result<()> {
        if old.nlink() > 1 || !take_owner(&file, old) {
            file.rewind()?;
            let mut target = OpenOptions::new().write(true).truncate(true).open(dest)?;
            io::copy(&mut file, &mut target)?;
            let _ = fs::remove_file(&self.path);
            return Ok(());
        }
        file.set_permissions(old.permissions())?;
        fs::rename(&self.path, dest)
    }
}

/// Gives `file` the owner and group of `old`; false where the system refuses (only root may
/// give a file away, and an owner may only choose a group they belong to).
fn take_owner(file: &File, old: &Metadata) -> bool {
    let Ok(new) = file.metadata() else {
        return false;
    };
    if (new.uid(), new.gid()) == (old.uid(), old.gid()) {
        return true;
    }
    std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())).is_ok()
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
    fn file_errors_are_marked_unwritable_under_any_further_context() {
        let dir = TempDir::new("unwritable");
        let path = dir.path().join("no/such/out");
        let err = Output::open(&Destination::Given(path)).err().unwrap();
        let err = err.context("cannot fetch http://host/");
        assert!(err.downcast_ref::<Unwritable>().is_some(), "{err:#}");
    }

    #[test]
    fn links_are_followed_from_their_own_directory_to_where_they_dangle() {
        let dir = TempDir::new("links");
        fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("../b", dir.path().join("sub/a")).unwrap();
        std::os::unix::fs::symlink("sub/c", dir.path().join("b")).unwrap();
        let end = follow_links(&dir.path().join("sub/a")).unwrap();
        assert_eq!(end, dir.path().join("sub/../sub/c"));
        let plain = dir.path().join("plain");
        assert_eq!(follow_links(&plain).unwrap(), plain);
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        let err = follow_links(&dir.path().join("loop")).unwrap_err();
        assert_eq!(err.to_string(), "too many levels of symbolic links");
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
