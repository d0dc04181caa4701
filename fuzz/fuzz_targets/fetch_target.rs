//! Url parsing and redirect resolution on arbitrary text: no panic, and whatever parses
//! can go into a request line and a file name as it is: no CR, LF, space or control byte in
//! the path or the Host field, and a default name that stays in the current directory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sockdemo::fetch::url::Url;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // The first line is the target; each further line a Location against the last target.
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let base = match Url::parse(first) {
        Ok(target) => {
            check(&target);
            target
        }
        Err(_) => Url::parse("example.org/dir/page?q=1").unwrap(),
    };
    // The same text as a Location, then the rest in a chain.
    let mut current = base.clone();
    for location in std::iter::once(first).chain(lines).take(8) {
        if let Ok(next) = current.redirect(location) {
            check(&next);
            current = next;
        }
    }
});

fn check(target: &Url) {
    let request_line = format!("GET {} HTTP/1.1", target.path);
    assert!(target.path.starts_with('/'), "{target:?}");
    assert!(
        target.path.bytes().all(|b| b.is_ascii_graphic()),
        "{target:?}"
    );
    assert_eq!(request_line.split(' ').count(), 3, "{target:?}");
    let host = target.authority();
    assert!(!host.is_empty(), "{target:?}");
    assert!(host.bytes().all(|b| b.is_ascii_graphic()), "{target:?}");
    assert!(target.port > 0, "{target:?}");

    let name = target.file_name();
    assert!(!name.is_empty(), "{target:?}");
    assert!(!name.contains(['/', '\0']), "{target:?}: {name:?}");
    assert!(!name.starts_with('.'), "{target:?}: {name:?}");
    assert!(name != "." && name != "..", "{target:?}: {name:?}");

    // What is printed for a target reads back as the same target.
    assert_eq!(
        Url::parse(&target.to_string()).ok().as_ref(),
        Some(target)
    );
}
