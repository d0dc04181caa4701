//! Where `fetch` goes: the TARGET of the command line and the Location of a redirect, parsed
//! into scheme, host, port and path. Pure string work, kept apart from the sockets so every
//! form a user might type (and every trick a server might send) is tested on its own.
//!
//! Paths are sent as given, percent-encoding included; only bytes that cannot appear in a
//! request line (controls, space, non-ASCII, a few punctuation marks) are percent-encoded,
//! and `.`/`..` segments are resolved, as curl does.

use std::fmt;
use std::net::Ipv6Addr;

/// Default file names are cut to this many bytes, leaving room for `.N` and temp suffixes.
pub const MAX_NAME: usize = 200;
/// The file name for a path that ends in `/` (or has no usable last segment).
pub const INDEX: &str = "index.html";

/// The schemes fetch knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP over TCP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// The port a URL of this scheme means when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// The scheme's name, as in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn parse(name: &str) -> Result<Scheme, Error> {
        if name.eq_ignore_ascii_case("http") {
            Ok(Scheme::Http)
        } else if name.eq_ignore_ascii_case("https") {
            Ok(Scheme::Https)
        } else {
            Err(Error::UnsupportedScheme(name.to_string()))
        }
    }
}

/// Why a TARGET or a Location was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A scheme other than http and https.
    UnsupportedScheme(String),
    /// Nothing where the host should be.
    NoHost,
    /// A host name with characters no host name has.
    BadHost(String),
    /// A port that is not a number in 1..=65535.
    BadPort(String),
    /// `[` without its `]`.
    UnclosedBracket,
    /// Brackets around something that is not an IPv6 address.
    BadIpv6(String),
    /// An IPv6 address without brackets.
    Ipv6WithoutBrackets,
    /// `user:password@` in the authority.
    UserInfo,
    /// A Location that is neither a URL of ours nor a reference.
    BadLocation(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::UnsupportedScheme(scheme) => write!(
                f,
                "unsupported scheme `{scheme}://` (only http:// and https:// are supported)"
            ),
            Error::NoHost => write!(f, "no host"),
            Error::BadHost(host) => write!(f, "invalid host name `{host}`"),
            Error::BadPort(port) => write!(f, "invalid port `{port}`"),
            Error::UnclosedBracket => write!(f, "unclosed `[`"),
            Error::BadIpv6(text) => write!(f, "`{text}` is not an IPv6 address"),
            Error::Ipv6WithoutBrackets => {
                write!(f, "IPv6 addresses go in brackets, as in [::1]:8080")
            }
            Error::UserInfo => write!(
                f,
                "user names in the target are not supported (use -H 'Authorization: ...')"
            ),
            Error::BadLocation(location) => write!(
                f,
                "refusing to follow a redirect to `{location}`: only http:// and https:// are followed"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// A URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// http or https.
    pub scheme: Scheme,
    /// A name or an address; IPv6 without its brackets.
    pub host: String,
    /// The port, the scheme's default when the URL names none.
    pub port: u16,
    /// Path and query, starting with `/`, ready for the request line.
    pub path: String,
}

impl Url {
    /// `host`, `host:port`, `host/path`, `http[s]://host[:port][/path][?query]`,
    /// `[v6]:port`; without a scheme, http.
    pub fn parse(text: &str) -> Result<Url, Error> {
        let (scheme, rest) = match text.split_once("://") {
            Some((scheme, rest)) if scheme_of(text) == Some(scheme) => {
                (Scheme::parse(scheme)?, rest)
            }
            _ => (Scheme::Http, text),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (host, port) = parse_authority(authority, scheme)?;
        let path = strip_fragment(path);
        let path = match path.bytes().next() {
            None => "/".to_string(),
            Some(b'?') => format!("/{path}"),
            Some(_) => path.to_string(),
        };
        Ok(Url {
            scheme,
            host,
            port,
            path: normalize_path(&path),
        })
    }

    /// `host[:port]`: the port only when it is not the scheme's default, IPv6 in brackets.
    /// What the Host field carries.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Same scheme, host (case-insensitive) and port: credentials given for one may go to
    /// the other.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.scheme == other.scheme
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }

    /// The URL a `Location` sent with this URL's response points to: absolute (http or
    /// https), scheme-relative, absolute path, relative path or query.
    pub fn redirect(&self, location: &str) -> Result<Url, Error> {
        let location = location.trim();
        if let Some(scheme) = scheme_of(location) {
            let rest = location.get(scheme.len() + 1..).unwrap_or_default();
            if Scheme::parse(scheme).is_err() || !rest.starts_with("//") {
                return Err(Error::BadLocation(location.to_string()));
            }
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!("{}://{rest}", self.scheme.as_str()));
        }
        let reference = strip_fragment(location);
        let (base_path, _) = split_query(&self.path);
        let joined = match reference.bytes().next() {
            None => self.path.clone(),
            Some(b'/') => reference.to_string(),
            Some(b'?') => format!("{base_path}{reference}"),
            Some(_) => format!("{}{reference}", directory_of(base_path)),
        };
        Ok(Url {
            path: normalize_path(&joined),
            ..self.clone()
        })
    }

    /// The name to save under when no `-o` is given: the last path segment (query dropped,
    /// not percent-decoded), without leading dots, at most [`MAX_NAME`] bytes, and
    /// [`INDEX`] when nothing usable is left. It never names another directory.
    pub fn file_name(&self) -> String {
        let (path, _) = split_query(&self.path);
        let last = path.rsplit('/').next().unwrap_or_default();
        let name: String = last
            .trim_start_matches('.')
            .chars()
            .take(MAX_NAME)
            .collect();
        if name.is_empty() || name.contains(['/', '\0']) {
            return INDEX.to_string();
        }
        name
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }
}

/// The scheme of an absolute URL (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"`).
fn scheme_of(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    valid.then_some(scheme)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn parse_authority(authority: &str, scheme: Scheme) -> Result<(String, u16), Error> {
    if authority.contains('@') {
        return Err(Error::UserInfo);
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or(Error::UnclosedBracket)?;
        inside
            .parse::<Ipv6Addr>()
            .map_err(|_| Error::BadIpv6(inside.to_string()))?;
        let port = match after {
            "" => scheme.default_port(),
            _ => parse_port(after.strip_prefix(':').unwrap_or(after), scheme)?,
        };
        return Ok((inside.to_string(), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((_, port)) if port.contains(':') => return Err(Error::Ipv6WithoutBrackets),
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
    if host.is_empty() {
        return Err(Error::NoHost);
    }
    if !host.chars().all(valid) {
        return Err(Error::BadHost(host.to_string()));
    }
    Ok((
        host.to_string(),
        parse_port(port.unwrap_or_default(), scheme)?,
    ))
}

/// A port in 1..=65535; an empty one (`host:`) is the scheme's default.
fn parse_port(text: &str, scheme: Scheme) -> Result<u16, Error> {
    if text.is_empty() {
        return Ok(scheme.default_port());
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(port),
        _ => Err(Error::BadPort(text.to_string())),
    }
}

fn strip_fragment(text: &str) -> &str {
    text.split_once('#').map_or(text, |(before, _)| before)
}

/// `(path, "?query")`, the query with its `?` (or empty).
fn split_query(path: &str) -> (&str, &str) {
    path.split_at(path.find('?').unwrap_or(path.len()))
}

/// `/a/b` → `/a/`: where a relative reference is resolved from.
fn directory_of(path: &str) -> &str {
    path.rfind('/').map_or("/", |at| path.split_at(at + 1).0)
}

/// Dot segments resolved, and bytes that may not appear in a request line encoded.
fn normalize_path(path: &str) -> String {
    let (path, query) = split_query(path);
    encode(&format!("{}{query}", remove_dot_segments(path)))
}

/// RFC 3986 section 5.2.4, for a path that starts with `/`: `..` never climbs above `/`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
        if last && (*segment == "." || *segment == "..") {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// A Location's bytes as text for [`Url::redirect`]: every byte that is a control, DEL or
/// not ASCII is percent-encoded as it is (`\xFF` as `%FF`, `\x01` as `%01`), so that the
/// request carries the bytes the server sent, never a replacement character or a space put
/// in their place.
pub fn location(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if !(b' '..0x7f).contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// Percent-encodes what a request line cannot carry; `%` itself passes through as given.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte <= b' ' || byte >= 0x7f || b"\"<>\\^`{|}".contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16, path: &str) -> Url {
        Url {
            scheme: Scheme::Http,
            host: host.to_string(),
            port,
            path: path.to_string(),
        }
    }

    #[test]
    fn every_form_of_target_parses() {
        let cases = [
            ("example.org", target("example.org", 80, "/")),
            ("example.org:8080", target("example.org", 8080, "/")),
            ("example.org/a/b.txt", target("example.org", 80, "/a/b.txt")),
            ("http://example.org", target("example.org", 80, "/")),
            (
                "HTTP://Example.org:81/x?y=1#frag",
                target("Example.org", 81, "/x?y=1"),
            ),
            ("http://h?q", target("h", 80, "/?q")),
            ("http://h:/p", target("h", 80, "/p")),
            ("[::1]:8080", target("::1", 8080, "/")),
            ("[::1]", target("::1", 80, "/")),
            ("http://[::1]/x", target("::1", 80, "/x")),
            (
                "127.0.0.1:9/a%20b%2Fc",
                target("127.0.0.1", 9, "/a%20b%2Fc"),
            ),
            ("h/a b/é", target("h", 80, "/a%20b/%C3%A9")),
            ("h/a/../b/./c", target("h", 80, "/b/c")),
            ("h/../../etc/passwd", target("h", 80, "/etc/passwd")),
            ("h/a/..", target("h", 80, "/")),
        ];
        for (text, expected) in cases {
            assert_eq!(Url::parse(text).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn bad_targets_are_refused_with_a_reason() {
        let cases = [
            ("ftp://example.org/", "unsupported scheme `ftp://`"),
            ("file:///etc/passwd", "unsupported scheme `file://`"),
            ("", "no host"),
            ("/path", "no host"),
            ("http:///x", "no host"),
            ("h:0", "invalid port `0`"),
            ("h:65536", "invalid port `65536`"),
            ("h:+80", "invalid port `+80`"),
            ("h:x", "invalid port `x`"),
            ("::1", "IPv6 addresses go in brackets"),
            ("[::1", "unclosed `[`"),
            ("[1.2.3.4]", "is not an IPv6 address"),
            ("[::1]x", "invalid port `x`"),
            ("user:pw@h", "user names in the target are not supported"),
            ("a b", "invalid host name `a b`"),
            ("h\r\nX: y", "invalid host name"),
        ];
        for (text, expected) in cases {
            let err = Url::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn host_field_has_the_port_only_when_not_80() {
        assert_eq!(target("h", 80, "/").authority(), "h");
        assert_eq!(target("h", 8080, "/").authority(), "h:8080");
        assert_eq!(target("::1", 80, "/").authority(), "[::1]");
        assert_eq!(target("::1", 81, "/").authority(), "[::1]:81");
        assert_eq!(target("::1", 81, "/x").to_string(), "http://[::1]:81/x");
    }

    #[test]
    fn redirects_resolve_against_the_current_target() {
        let base = target("h", 8080, "/dir/page?x=1");
        let cases = [
            ("http://other:81/y", target("other", 81, "/y")),
            ("HTTP://other", target("other", 80, "/")),
            ("//other/z", target("other", 80, "/z")),
            ("/abs?q", target("h", 8080, "/abs?q")),
            ("rel", target("h", 8080, "/dir/rel")),
            ("../up", target("h", 8080, "/up")),
            ("../../../up", target("h", 8080, "/up")),
            ("./", target("h", 8080, "/dir/")),
            ("?y=2", target("h", 8080, "/dir/page?y=2")),
            ("", target("h", 8080, "/dir/page?x=1")),
            ("#top", target("h", 8080, "/dir/page?x=1")),
            ("  /spaced  ", target("h", 8080, "/spaced")),
        ];
        for (location, expected) in cases {
            assert_eq!(base.redirect(location).unwrap(), expected, "{location}");
        }
    }

    #[test]
    fn location_bytes_are_percent_encoded_as_they_came() {
        let cases: &[(&[u8], &str)] = &[
            (b"/a\xffb", "/a%FFb"),
            (b"/a\x01b", "/a%01b"),
            (b"/\xc3\xa9 x\x7f", "/%C3%A9 x%7F"),
            (b"/%41?q=%ff", "/%41?q=%ff"),
        ];
        for (bytes, text) in cases {
            assert_eq!(location(bytes), *text, "{bytes:?}");
        }
        let base = target("h", 80, "/dir/page");
        let followed = base.redirect(&location(b"/a\xff\x01 b")).unwrap();
        assert_eq!(followed, target("h", 80, "/a%FF%01%20b"));
        let relative = base.redirect(&location(b"\xfe")).unwrap();
        assert_eq!(relative, target("h", 80, "/dir/%FE"));
    }

    #[test]
    fn redirects_elsewhere_than_http_and_https_are_refused() {
        let base = target("h", 80, "/");
        for location in ["file:///etc/passwd", "ftp://h/x", "mailto:a@b", "http:x"] {
            let err = base.redirect(location).unwrap_err();
            assert!(
                matches!(err, Error::BadLocation(_) | Error::UnsupportedScheme(_)),
                "{location}: {err}"
            );
        }
    }

    #[test]
    fn origins_compare_host_and_port() {
        let a = target("Host", 80, "/a");
        assert!(a.same_origin(&target("host", 80, "/b")));
        assert!(!a.same_origin(&target("host", 81, "/a")));
        assert!(!a.same_origin(&target("other", 80, "/a")));
    }

    #[test]
    fn default_names_stay_in_the_current_directory() {
        let cases = [
            ("/", INDEX),
            ("/dir/", INDEX),
            ("/a/file.tar.gz?x=1/2", "file.tar.gz"),
            ("/.hidden", "hidden"),
            ("/..", INDEX),
            ("/...", INDEX),
            ("/a%2F..%2Fb", "a%2F..%2Fb"),
            ("/%2e%2e", "%2e%2e"),
            ("/x/.", INDEX),
            ("/a\\b", "a%5Cb"),
        ];
        for (path, name) in cases {
            let target = Url::parse(&format!("h{path}")).unwrap();
            assert_eq!(target.file_name(), name, "{path}");
        }
        let long = Url::parse(&format!("h/{}", "n".repeat(300))).unwrap();
        assert_eq!(long.file_name().len(), MAX_NAME);
    }

    #[test]
    fn https_has_its_own_default_port_and_origin() {
        let url = Url::parse("https://Example.org/x").unwrap();
        assert_eq!((url.scheme, url.port), (Scheme::Https, 443));
        assert_eq!(url.to_string(), "https://Example.org/x");
        assert_eq!(
            Url::parse("https://h:80/").unwrap().to_string(),
            "https://h:80/"
        );
        let plain = Url::parse("http://example.org:443/x").unwrap();
        assert!(!url.same_origin(&plain));
        assert!(url.same_origin(&Url::parse("HTTPS://example.org:443/y").unwrap()));
        let up = plain.redirect("https://example.org/z").unwrap();
        assert_eq!(up.scheme, Scheme::Https);
        let relative = url.redirect("//other/p").unwrap();
        assert_eq!((relative.scheme, relative.port), (Scheme::Https, 443));
    }
}
