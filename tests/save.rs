//! `sockdemo fetch -o FILE` writes its file only as a shell's `>` could: what mode the bytes
//! have while they arrive, whose file may be replaced and who owns it afterwards, symbolic
//! links, and the temporary file on every terminating signal. The real binary against
//! scripted peers on loopback port 0; the cases about other users run it as `nobody` through
//! `setpriv` (the tests run as root, for whom `>` refuses nothing).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Sender};

use crate::common::http_peer::{ok, Peer, Reply, TempDir};
use crate::common::{self, sockdemo, stderr, succeeded, wait_for_part, wait_output, BIN, STEP};

/// The exit status of a fetch that cannot write its file: curl's 23.
const EXIT_CANNOT_WRITE: i32 = 23;

/// The body the held peers send.
const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A response with [`BODY`] whose second half is sent only once the returned sender sends
/// (or is dropped): until then fetch holds a temporary file with half the body in it.
fn held_half() -> (Peer, Sender<()>) {
    let (release, released) = mpsc::channel::<()>();
    let reply = Reply::Custom(Box::new(move |stream| {
        use std::io::Write;
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", BODY.len());
        let (first, second) = BODY.split_at(BODY.len() / 2);
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(first);
        let _ = released.recv_timeout(STEP);
        let _ = stream.write_all(second);
    }));
    (Peer::v4(vec![reply]), release)
}

/// `sockdemo fetch ARGS...` started in `dir`, its output piped.
fn spawn_fetch(mut cmd: Command, dir: &Path) -> Child {
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sockdemo fetch")
}

fn fetch(args: &[&str]) -> Command {
    let mut cmd = sockdemo(["fetch"]);
    cmd.args(args);
    cmd
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = fs::metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

/// Asserts the exit status of a file that cannot be written and one `error: ` line (no
/// panic); returns that line.
fn cannot_write(output: &Output) -> String {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(EXIT_CANNOT_WRITE), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.matches("error: ").count(), 1, "{err}");
    err.lines().last().unwrap_or_default().to_string()
}

/// The unprivileged user the tests act as: `nobody` and its group, with no other groups.
struct Nobody {
    uid: u32,
    gid: u32,
}

impl Nobody {
    /// `nobody`, when the tests run as root and `setpriv` is there; `None` otherwise (see
    /// `common::require`: a skip, or a failure on CI).
    fn get() -> Option<Nobody> {
        let root = fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
        if !common::require(root, "acting as another user needs root") || !common::have("setpriv") {
            return None;
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
            assert!(out.status.success(), "id {flag} nobody");
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let nobody = Nobody {
            uid: id("-u"),
            gid: id("-g"),
        };
        let mut probe = nobody.command(&["--version"]);
        let output = common::run(&mut probe, STEP);
        assert!(
            output.status.success(),
            "nobody cannot run {BIN} (a directory on its path closed to other users?): {}",
            stderr(&output)
        );
        Some(nobody)
    }

    /// `sockdemo ARGS...` as nobody.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--clear-groups", "--", BIN])
            .args(args)
            .env_remove("RUST_LOG");
        cmd
    }

    /// `sockdemo fetch ARGS...` as nobody in `dir`, to completion.
    fn fetch_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = self.command(&["fetch"]);
        cmd.args(args).current_dir(dir);
        common::run(&mut cmd, STEP)
    }

    /// Gives `path` to nobody.
    fn own(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
    }

    /// A directory nobody may write in.
    fn dir(&self, label: &str) -> TempDir {
        let dir = TempDir::new(label);
        self.own(dir.path());
        set_mode(dir.path(), 0o755);
        dir
    }
}

#[test]
fn a_file_being_replaced_is_downloaded_into_a_file_only_its_owner_can_read() {
    let dir = TempDir::new("private-part");
    let secret = dir.join("secret.key");
    fs::write(&secret, b"old secret").unwrap();
    set_mode(&secret, 0o600);
    let (peer, release) = held_half();
    let child = spawn_fetch(fetch(&[&peer.url("/k"), "-o", "secret.key"]), dir.path());
    let part = wait_for_part(dir.path());
    assert_eq!(mode(&part), 0o600, "the temporary file while bytes arrive");
    release.send(()).unwrap();
    succeeded(&wait_output(child, STEP));
    assert_eq!(fs::read(&secret).unwrap(), BODY);
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(dir.names(), ["secret.key"]);
}

#[test]
fn a_new_file_has_its_final_mode_from_the_start() {
    let dir = TempDir::new("new-part");
    let (peer, release) = held_half();
    let child = spawn_fetch(fetch(&[&peer.url("/n"), "-o", "new"]), dir.path());
    let while_arriving = mode(&wait_for_part(dir.path()));
    release.send(()).unwrap();
    succeeded(&wait_output(child, STEP));
    assert_eq!(while_arriving, mode(&dir.join("new")));
}

#[test]
fn dash_o_refuses_a_file_the_user_may_not_write() {
    let Some(nobody) = Nobody::get() else { return };
    let dir = nobody.dir("read-only");
    let file = dir.join("ro");
    fs::write(&file, b"old").unwrap();
    nobody.own(&file);
    set_mode(&file, 0o444);
    let peer = Peer::v4(vec![ok("new")]);
    let output = nobody.fetch_in(dir.path(), &[&peer.url("/x"), "-o", "ro"]);
    assert_eq!(
        cannot_write(&output),
        "error: cannot write to ro: permission denied"
    );
    assert_eq!(fs::read(&file).unwrap(), b"old");
    assert_eq!(mode(&file), 0o444);
    assert_eq!(dir.names(), ["ro"]);
}

#[test]
fn root_replacing_a_users_file_keeps_its_mode_owner_and_group() {
    let Some(nobody) = Nobody::get() else { return };
    for file_mode in [0o640, 0o444, 0o4755] {
        let dir = TempDir::new("keep-owner");
        let file = dir.join("theirs");
        fs::write(&file, b"old").unwrap();
        nobody.own(&file);
        set_mode(&file, file_mode);
        let peer = Peer::v4(vec![ok("new")]);
        let mut cmd = fetch(&[&peer.url("/x"), "-o", "theirs"]);
        succeeded(&common::run(cmd.current_dir(dir.path()), STEP));
        assert_eq!(fs::read(&file).unwrap(), b"new");
        assert_eq!(owner(&file), (nobody.uid, nobody.gid), "{file_mode:o}");
        assert_eq!(mode(&file), file_mode);
        assert_eq!(dir.names(), ["theirs"]);
    }
}

#[test]
fn a_file_the_user_may_write_but_does_not_own_keeps_its_owner() {
    let Some(nobody) = Nobody::get() else { return };
    let dir = nobody.dir("shared");
    let file = dir.join("shared");
    fs::write(&file, b"old").unwrap();
    std::os::unix::fs::chown(&file, Some(0), Some(nobody.gid)).unwrap();
    set_mode(&file, 0o664);
    let peer = Peer::v4(vec![ok("new")]);
    succeeded(&nobody.fetch_in(dir.path(), &[&peer.url("/x"), "-o", "shared"]));
    assert_eq!(fs::read(&file).unwrap(), b"new");
    assert_eq!(owner(&file), (0, nobody.gid));
    assert_eq!(mode(&file), 0o664);
    assert_eq!(dir.names(), ["shared"]);
}

#[test]
fn a_file_with_other_hard_links_is_written_through_every_name() {
    let dir = TempDir::new("hard-links");
    fs::write(dir.join("a"), b"old").unwrap();
    fs::hard_link(dir.join("a"), dir.join("b")).unwrap();
    let peer = Peer::v4(vec![ok("new")]);
    let mut cmd = fetch(&[&peer.url("/x"), "-o", "a"]);
    succeeded(&common::run(cmd.current_dir(dir.path()), STEP));
    assert_eq!(fs::read(dir.join("b")).unwrap(), b"new");
    assert_eq!(fs::metadata(dir.join("a")).unwrap().nlink(), 2);
    assert_eq!(dir.names(), ["a", "b"]);
}

#[test]
fn no_temporary_file_beside_the_file_fails_and_says_why() {
    let Some(nobody) = Nobody::get() else { return };
    let dir = TempDir::new("closed-dir");
    set_mode(dir.path(), 0o755);
    let file = dir.join("mine");
    fs::write(&file, b"old").unwrap();
    nobody.own(&file);
    let peer = Peer::v4(vec![ok("new")]);
    let output = nobody.fetch_in(dir.path(), &[&peer.url("/x"), "-o", "mine"]);
    assert_eq!(
        cannot_write(&output),
        "error: cannot create a temporary file in .: permission denied"
    );
    assert_eq!(fs::read(&file).unwrap(), b"old");
    assert_eq!(dir.names(), ["mine"]);
}

#[test]
fn dash_o_onto_a_dangling_symlink_creates_the_file_it_names() {
    let dir = TempDir::new("dangling");
    std::os::unix::fs::symlink("made", dir.join("link")).unwrap();
    // A chain through a subdirectory: each link is read relative to its own directory.
    fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink("../hop", dir.join("sub/start")).unwrap();
    std::os::unix::fs::symlink("sub/end", dir.join("hop")).unwrap();
    let peer = Peer::v4(vec![ok("one"), ok("two")]);
    for (name, made, body) in [("link", "made", "one"), ("sub/start", "sub/end", "two")] {
        let mut cmd = fetch(&[&peer.url("/x"), "-o", name]);
        succeeded(&common::run(cmd.current_dir(dir.path()), STEP));
        let link = fs::symlink_metadata(dir.join(name)).unwrap();
        assert!(link.file_type().is_symlink(), "{name} stays a link");
        assert_eq!(fs::read_to_string(dir.join(made)).unwrap(), body);
    }
    assert_eq!(dir.names(), ["hop", "link", "made", "sub"]);
    assert_eq!(
        sockdemo::testing::names_in(&dir.join("sub")),
        ["end", "start"]
    );
}

#[test]
fn every_catchable_terminating_signal_removes_the_temporary_file() {
    // Signal numbers as Linux has them on every common architecture; 64 is SIGRTMAX.
    let signals = [
        ("HUP", 1),
        ("QUIT", 3),
        ("USR1", 10),
        ("USR2", 12),
        ("ALRM", 14),
        ("XCPU", 24),
        ("VTALRM", 26),
        ("PROF", 27),
        ("PWR", 30),
        ("64", 64),
    ];
    for (name, number) in signals {
        let dir = TempDir::new("signal");
        fs::write(dir.join("out"), b"old").unwrap();
        let (peer, _release) = held_half();
        let child = spawn_fetch(fetch(&[&peer.url("/x"), "-o", "out"]), dir.path());
        wait_for_part(dir.path());
        let output = signal(child, name);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(128 + number), "SIG{name}: {err}");
        assert_eq!(dir.names(), ["out"], "SIG{name}");
        assert_eq!(fs::read(dir.join("out")).unwrap(), b"old");
    }
}

#[test]
fn a_file_size_limit_leaves_no_temporary_file() {
    // Past `ulimit -f` the kernel sends SIGXFSZ, whose default action dumps core and would
    // leave the temporary file behind.
    let dir = TempDir::new("fsize");
    let peer = Peer::v4(vec![ok(&"x".repeat(256 * 1024))]);
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "ulimit -f 8; exec \"$0\" \"$@\"", BIN, "fetch"])
        .args([&peer.url("/x"), "-o", "out"])
        .env_remove("RUST_LOG")
        .current_dir(dir.path());
    let output = common::run(&mut cmd, STEP);
    let err = stderr(&output);
    assert!(output.status.code().is_some_and(|code| code != 0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(dir.names().is_empty(), "{:?}", dir.names());
}

#[test]
fn a_signal_ignored_when_fetch_starts_stays_ignored() {
    // As `nohup` starts a command: SIGHUP ignored, and ignored it stays.
    let dir = TempDir::new("nohup");
    let (peer, release) = held_half();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "trap '' HUP; exec \"$0\" \"$@\"", BIN, "fetch"])
        .args([&peer.url("/x"), "-o", "out"])
        .env_remove("RUST_LOG");
    let child = spawn_fetch(cmd, dir.path());
    wait_for_part(dir.path());
    let status = fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let mask = |field: &str| {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        u64::from_str_radix(line[field.len()..].trim(), 16).unwrap()
    };
    assert_eq!(mask("SigCgt:") & 1, 0, "SIGHUP is not caught");
    assert_eq!(mask("SigIgn:") & 1, 1, "SIGHUP is still ignored");
    assert_ne!(mask("SigCgt:") & (1 << 2), 0, "SIGQUIT is caught");
    let sent = Command::new("kill")
        .args(["-s", "HUP", &child.id().to_string()])
        .status();
    assert!(sent.unwrap().success());
    release.send(()).unwrap();
    succeeded(&wait_output(child, STEP));
    assert_eq!(fs::read(dir.join("out")).unwrap(), BODY);
}

/// Sends SIG`name` to `child` and collects its output.
fn signal(child: Child, name: &str) -> Output {
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-s", name, &pid]).status();
    assert!(sent.unwrap().success());
    wait_output(child, STEP)
}
