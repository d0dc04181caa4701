//! The integration tests, as one crate: each file under `tests/` is a module here, so that a
//! change to the shared helpers in `common/` rebuilds one test crate rather than one per file
//! (ripgrep's layout). Only `alloc.rs` is a crate of its own (see Cargo.toml). A file that is
//! neither a module here nor a `[[test]]` would silently never run:
//! [`every_file_under_tests_is_compiled`] fails when there is one. Likewise a test that
//! skips by itself, rather than through `common::require`, would skip on CI too:
//! [`every_skip_goes_through_require`] fails when one does.

mod common;

mod balancer;
mod bench;
mod bench_interrupt;
mod cli;
mod client;
mod demo;
mod faults;
mod fetch;
mod fetch_contract;
mod happy_eyeballs;
mod haproxy_header;
mod help;
mod hints;
mod hostile;
mod https;
mod install;
mod netns;
mod progress;
mod proxy_protocol;
mod save;
mod serial;
mod serve;
mod signals;
mod stderr_pipe;
mod threads;
mod trace;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn every_file_under_tests_is_compiled() {
    let root = Path::new(ROOT);
    let mut compiled = BTreeSet::new();
    for crate_root in test_crate_roots(&root.join("Cargo.toml")) {
        let file = root.join(crate_root);
        let dir = file.parent().expect("a directory").to_path_buf();
        modules_of(&file, &dir, &mut compiled);
    }
    let mut present = BTreeSet::new();
    rust_files(&root.join("tests"), &mut present);
    let missed: Vec<_> = present
        .difference(&compiled)
        .map(|path| path.strip_prefix(root).unwrap_or(path))
        .collect();
    assert!(
        missed.is_empty(),
        "never compiled (add a `mod` line to tests/tests.rs, or a [[test]] to Cargo.toml): \
         {missed:?}"
    );
}

#[test]
fn every_skip_goes_through_require() {
    let root = Path::new(ROOT);
    let mut files = BTreeSet::new();
    rust_files(&root.join("tests"), &mut files);
    let helper = root.join("tests/common/mod.rs");
    let this = root.join(file!());
    for file in files.iter().filter(|&f| *f != helper && *f != this) {
        let text = fs::read_to_string(file).expect("read a test file");
        for (n, line) in text.lines().enumerate() {
            let line = line.to_lowercase();
            let own_skip = line.contains("eprintln!") && line.contains("skip");
            let own_ci_check = line.contains("env::var") && line.contains("\"ci\"");
            assert!(
                !(own_skip || own_ci_check),
                "{}:{}: a test skips on its own; use common::require, which fails under CI",
                file.strip_prefix(root).unwrap_or(file).display(),
                n + 1
            );
        }
    }
}

/// The `path` of every `[[test]]` in the manifest.
fn test_crate_roots(manifest: &Path) -> Vec<String> {
    let text = fs::read_to_string(manifest).expect("read Cargo.toml");
    let mut roots = Vec::new();
    let mut in_test = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_test = line == "[[test]]";
        } else if let (true, Some(value)) = (in_test, line.strip_prefix("path = ")) {
            roots.push(value.trim_matches('"').to_string());
        }
    }
    roots
}

/// `file` and, recursively, every file its `mod NAME;` lines bring in; `dir` is where those
/// modules live (beside a crate root, in `NAME/` for module `NAME`).
fn modules_of(file: &Path, dir: &Path, found: &mut BTreeSet<PathBuf>) {
    let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("read {file:?}: {e}"));
    found.insert(file.to_path_buf());
    for name in text.lines().filter_map(declared_module) {
        let flat = dir.join(format!("{name}.rs"));
        let path = if flat.exists() {
            flat
        } else {
            dir.join(name).join("mod.rs")
        };
        modules_of(&path, &dir.join(name), found);
    }
}

/// `NAME` from a line `mod NAME;`, `pub mod NAME;` or `pub(crate) mod NAME;` (an inline
/// `mod NAME {` is no file of its own).
fn declared_module(line: &str) -> Option<&str> {
    let line = line.trim();
    let line = match line.strip_prefix("pub") {
        Some(rest) => rest.split_once(' ')?.1,
        None => line,
    };
    line.strip_prefix("mod ")?.strip_suffix(';')
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, found: &mut BTreeSet<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}")) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.insert(path);
        }
    }
}
