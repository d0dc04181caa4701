//! The PROXY protocol (HAProxy's `doc/proxy-protocol.txt`, versions 1 and 2) on the receiving
//! side, without a socket in sight. Behind a load balancer every connection comes from the
//! balancer; the balancer says who the client really is in a header it sends before anything
//! else. This parser takes that header in whatever pieces the network delivers and says who
//! the client is, that the connection is the balancer's own health check, or that the
//! balancer does not know (use the real peer).
//!
//! It decides as early as the bytes allow: the first byte that matches neither signature ends
//! it, so a client that talks without a header is refused at once, and no header makes it
//! hold more than [`MAX_LEN`] bytes. Every limit is a constant here with an [`Error`] of its
//! own, and no input makes it panic.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What every version 1 header begins with: `PROXY` and exactly one space.
pub const V1_SIGNATURE: &[u8] = b"PROXY ";
/// The longest version 1 line, CRLF included: `PROXY UNKNOWN` followed by two full IPv6
/// addresses and two ports (the specification's worst case).
pub const V1_MAX_LEN: usize = 107;
/// What every version 2 header begins with (it holds a NUL byte: not a C string).
pub const V2_SIGNATURE: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a version 2 header: signature, version and command, family and
/// protocol, and the big-endian length of what follows.
pub const V2_FIXED_LEN: usize = 16;
/// The longest version 2 header accepted, fixed part included. The length field allows 64
/// KiB; HAProxy sends a few dozen bytes (a few hundred with every TLV it knows), and nginx
/// refuses headers over 4096 bytes too, so this bound only costs hostile peers.
pub const V2_MAX_LEN: usize = 4096;
/// The address block of TCP over IPv4: two 4-byte addresses and two 2-byte ports.
pub const V2_INET_LEN: usize = 12;
/// The address block of TCP over IPv6: two 16-byte addresses and two 2-byte ports.
pub const V2_INET6_LEN: usize = 36;
/// The most bytes any header can take: the parser never holds more.
pub const MAX_LEN: usize = V2_MAX_LEN;

/// The version 2 command of a balancer talking for itself (a health check).
const V2_LOCAL: u8 = 0x0;
/// The version 2 command of a relayed connection.
const V2_PROXY: u8 = 0x1;
/// Version 2 family and protocol bytes: unspecified, TCP over IPv4, TCP over IPv6.
const V2_UNSPEC: u8 = 0x00;
const V2_TCP4: u8 = 0x11;
const V2_TCP6: u8 = 0x21;
/// A TLV's type byte and two length bytes.
const TLV_HEADER_LEN: usize = 3;

/// What a complete header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// Relayed for a client: `source` is the client, `destination` the address it reached
    /// on the balancer.
    Proxied {
        /// The client.
        source: SocketAddr,
        /// What the client connected to.
        destination: SocketAddr,
    },
    /// Version 2 `LOCAL`: the balancer's own connection (a health check); use the real peer.
    Local,
    /// Version 1 `UNKNOWN` or version 2 `UNSPEC`: the balancer cannot tell; use the real peer.
    Unknown,
}

impl Header {
    /// The client to log and trace: the header's source when it names one, else `peer`
    /// (the real peer, the balancer itself).
    pub fn client(&self, peer: SocketAddr) -> SocketAddr {
        match self {
            Header::Proxied { source, .. } => *source,
            Header::Local | Header::Unknown => peer,
        }
    }
}

/// How far a header has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not complete yet: feed more bytes.
    Partial,
    /// The header is complete. `consumed` bytes of the slice just fed belong to it; the rest
    /// of that slice (and everything after) belongs to the conversation that follows.
    Complete {
        /// What the header says.
        header: Header,
        /// Bytes of the slice just fed that belong to the header.
        consumed: usize,
    },
}

/// Why bytes are not an acceptable PROXY protocol header. Each names one rule of the
/// specification or one limit here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The first bytes match neither signature; `start` holds them, up to the first byte
    /// that differs.
    NotProxy {
        /// The bytes that gave it away.
        start: Vec<u8>,
    },
    /// The connection closed after `received` bytes, before the header was complete.
    Truncated {
        /// Header bytes that had arrived.
        received: usize,
    },
    /// No CRLF within [`V1_MAX_LEN`] bytes.
    V1TooLong,
    /// A CR not followed by LF, or an LF without its CR.
    V1BadLineEnding,
    /// The protocol is none of `TCP4`, `TCP6` and `UNKNOWN`.
    V1BadProtocol(String),
    /// Not exactly four fields separated by single spaces after `TCP4` or `TCP6`.
    V1BadFields,
    /// An address that is not a canonical address of the family the line names.
    V1BadAddress(String),
    /// A port that is not a decimal number without leading zeros.
    V1BadPort(String),
    /// A port above 65535.
    V1PortOutOfRange(String),
    /// A version other than 2 after the version 2 signature.
    V2BadVersion(u8),
    /// A command other than `LOCAL` (0) and `PROXY` (1).
    V2BadCommand(u8),
    /// A family and protocol byte the specification does not define.
    V2BadFamily(u8),
    /// UDP or UNIX sockets: defined, but not what a TCP server can be relayed.
    V2Unsupported(u8),
    /// The header would be longer than [`V2_MAX_LEN`] bytes (its length in the error).
    V2TooLong(usize),
    /// The length leaves no room for the addresses of the family.
    V2AddressTooShort {
        /// The family byte.
        family: u8,
        /// The length the header gave.
        len: usize,
    },
    /// The bytes after the addresses are not a sequence of whole TLVs.
    V2BadTlv,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotProxy { start } => write!(
                f,
                "not a proxy protocol header: it begins with \"{}\"",
                start.escape_ascii()
            ),
            Error::Truncated { received: 0 } => {
                write!(f, "the connection closed before a proxy protocol header")
            }
            Error::Truncated { received } => write!(
                f,
                "the connection closed after {received} bytes of a proxy protocol header"
            ),
            Error::V1TooLong => write!(
                f,
                "proxy protocol v1 line without CRLF in {V1_MAX_LEN} bytes"
            ),
            Error::V1BadLineEnding => {
                write!(
                    f,
                    "proxy protocol v1 line with a CR or LF that is not a CRLF"
                )
            }
            Error::V1BadProtocol(name) => write!(
                f,
                "proxy protocol v1 names protocol {name:?}, not TCP4, TCP6 or UNKNOWN"
            ),
            Error::V1BadFields => write!(
                f,
                "proxy protocol v1 line is not `PROXY TCPn SOURCE DESTINATION SPORT DPORT`"
            ),
            Error::V1BadAddress(text) => write!(f, "proxy protocol v1 address {text:?} is invalid"),
            Error::V1BadPort(text) => write!(f, "proxy protocol v1 port {text:?} is invalid"),
            Error::V1PortOutOfRange(text) => {
                write!(f, "proxy protocol v1 port {text:?} is above 65535")
            }
            Error::V2BadVersion(version) => {
                write!(f, "proxy protocol version {version} after the v2 signature")
            }
            Error::V2BadCommand(command) => {
                write!(
                    f,
                    "proxy protocol v2 command {command:#x} is neither LOCAL nor PROXY"
                )
            }
            Error::V2BadFamily(byte) => {
                write!(
                    f,
                    "proxy protocol v2 family and protocol {byte:#04x} are undefined"
                )
            }
            Error::V2Unsupported(byte) => write!(
                f,
                "proxy protocol v2 relays {}, only TCP is supported",
                family_name(*byte)
            ),
            Error::V2TooLong(len) => write!(
                f,
                "proxy protocol v2 header of {len} bytes is longer than {V2_MAX_LEN}"
            ),
            Error::V2AddressTooShort { family, len } => write!(
                f,
                "proxy protocol v2 address block of {len} bytes is too short for {}",
                family_name(*family)
            ),
            Error::V2BadTlv => write!(f, "proxy protocol v2 TLV runs past the end of the header"),
        }
    }
}

impl std::error::Error for Error {}

/// Words for a version 2 family and protocol byte.
fn family_name(byte: u8) -> &'static str {
    match byte {
        V2_TCP4 => "TCP over IPv4",
        V2_TCP6 => "TCP over IPv6",
        0x12 => "UDP over IPv4",
        0x22 => "UDP over IPv6",
        0x31 => "UNIX stream sockets",
        0x32 => "UNIX datagram sockets",
        _ => "an undefined family",
    }
}

/// Reads one header, fed in any pieces. The same bytes give the same outcome however they
/// are split.
#[derive(Debug, Clone, Default)]
pub struct Parser {
    /// The header's bytes so far; never more than [`MAX_LEN`].
    buf: Vec<u8>,
    /// The outcome, once decided; later feeds repeat it.
    done: Option<Result<Header, Error>>,
}

impl Parser {
    /// A parser at the start of a connection.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Takes the next bytes of the connection. Once the header is complete, `consumed` says
    /// where in `bytes` the conversation starts; fed again after that, it answers `Complete`
    /// with `consumed: 0` (none of the new bytes are the header's). After an error, it
    /// answers the same error.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Status, Error> {
        if let Some(done) = &self.done {
            return done.clone().map(|header| Status::Complete {
                header,
                consumed: 0,
            });
        }
        for (at, &byte) in bytes.iter().enumerate() {
            self.buf.push(byte);
            if let Some(outcome) = step(&self.buf) {
                self.buf = Vec::new();
                self.done = Some(outcome.clone());
                return outcome.map(|header| Status::Complete {
                    header,
                    consumed: at + 1,
                });
            }
        }
        Ok(Status::Partial)
    }

    /// The outcome when the connection has closed: the header if it was complete, else
    /// [`Error::Truncated`] (or the error already found).
    pub fn finish(&self) -> Result<Header, Error> {
        match &self.done {
            Some(done) => done.clone(),
            None => Err(Error::Truncated {
                received: self.buf.len(),
            }),
        }
    }
}

/// Parses a header at the start of `bytes` in one go; `consumed` counts from the start.
pub fn parse(bytes: &[u8]) -> Result<Status, Error> {
    Parser::new().feed(bytes)
}

/// Looks at the byte just added to `buf`: `None` while undecided, else the outcome. Every
/// decision depends on the bytes so far only, which is what makes splits irrelevant.
fn step(buf: &[u8]) -> Option<Result<Header, Error>> {
    match buf.first() {
        Some(b'P') => v1_step(buf),
        Some(b'\r') => v2_step(buf),
        _ => Some(Err(not_proxy(buf))),
    }
}

fn not_proxy(buf: &[u8]) -> Error {
    Error::NotProxy {
        start: buf.to_vec(),
    }
}

/// Version 1: the signature byte by byte, then the line up to its CRLF.
fn v1_step(buf: &[u8]) -> Option<Result<Header, Error>> {
    let n = buf.len();
    let (&last, line) = buf.split_last()?;
    if n <= V1_SIGNATURE.len() {
        return (V1_SIGNATURE.get(n - 1) != Some(&last)).then(|| Err(not_proxy(buf)));
    }
    if line.last() == Some(&b'\r') {
        if last != b'\n' {
            return Some(Err(Error::V1BadLineEnding));
        }
        return Some(parse_v1(&line[..line.len() - 1]));
    }
    if last == b'\n' {
        return Some(Err(Error::V1BadLineEnding));
    }
    (n >= V1_MAX_LEN).then_some(Err(Error::V1TooLong))
}

/// A version 1 line without its CRLF (it starts with [`V1_SIGNATURE`]).
fn parse_v1(line: &[u8]) -> Result<Header, Error> {
    let rest = line.get(V1_SIGNATURE.len()..).unwrap_or_default();
    let mut fields = rest.split(|&b| b == b' ');
    let protocol = fields.next().unwrap_or_default();
    let v6 = match protocol {
        // The specification: ignore whatever follows UNKNOWN up to the CRLF.
        b"UNKNOWN" => return Ok(Header::Unknown),
        b"TCP4" => false,
        b"TCP6" => true,
        other => return Err(Error::V1BadProtocol(lossy(other))),
    };
    let fields: Vec<&[u8]> = fields.collect();
    let [source, destination, source_port, destination_port] = fields[..] else {
        return Err(Error::V1BadFields);
    };
    if fields.iter().any(|field| field.is_empty()) {
        return Err(Error::V1BadFields);
    }
    Ok(Header::Proxied {
        source: SocketAddr::new(v1_address(source, v6)?, v1_port(source_port)?),
        destination: SocketAddr::new(v1_address(destination, v6)?, v1_port(destination_port)?),
    })
}

/// An IPv4 address in dotted decimal without leading zeros (std refuses them), or an IPv6
/// address in any of its text forms, as the line's protocol says.
fn v1_address(field: &[u8], v6: bool) -> Result<IpAddr, Error> {
    let bad = || Error::V1BadAddress(lossy(field));
    let text = std::str::from_utf8(field).map_err(|_| bad())?;
    let address = if v6 {
        text.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        text.parse::<Ipv4Addr>().map(IpAddr::V4)
    };
    address.map_err(|_| bad())
}

/// A port: decimal digits only (no sign, no leading zero), at most 65535.
fn v1_port(field: &[u8]) -> Result<u16, Error> {
    let digits = field.iter().all(u8::is_ascii_digit);
    if !digits || (field.len() > 1 && field.first() == Some(&b'0')) {
        return Err(Error::V1BadPort(lossy(field)));
    }
    field
        .iter()
        .try_fold(0u16, |port, digit| {
            port.checked_mul(10)?.checked_add(u16::from(digit - b'0'))
        })
        .ok_or_else(|| Error::V1PortOutOfRange(lossy(field)))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Version 2: the signature byte by byte, version and command as soon as they come, the
/// family and the length as soon as they come, then the rest up to the length.
fn v2_step(buf: &[u8]) -> Option<Result<Header, Error>> {
    let n = buf.len();
    let &last = buf.last()?;
    if n <= V2_SIGNATURE.len() {
        return (V2_SIGNATURE.get(n - 1) != Some(&last)).then(|| Err(not_proxy(buf)));
    }
    let early = match n {
        13 => check_version_command(last),
        14 => check_family(buf[12] & 0x0f, last),
        V2_FIXED_LEN => check_length(buf[12] & 0x0f, buf[13], v2_body_len(buf)),
        _ => Ok(()),
    };
    if let Err(err) = early {
        return Some(Err(err));
    }
    (n >= V2_FIXED_LEN && n == V2_FIXED_LEN + v2_body_len(buf)).then(|| parse_v2(buf))
}

/// The length field of a version 2 header (`buf` holds the fixed part).
fn v2_body_len(buf: &[u8]) -> usize {
    usize::from(u16::from_be_bytes([buf[14], buf[15]]))
}

fn check_version_command(byte: u8) -> Result<(), Error> {
    match (byte >> 4, byte & 0x0f) {
        (2, V2_LOCAL | V2_PROXY) => Ok(()),
        (2, command) => Err(Error::V2BadCommand(command)),
        (version, _) => Err(Error::V2BadVersion(version)),
    }
}

/// The family of a `PROXY` command; a `LOCAL` command's family is ignored, as the
/// specification asks. UDP and UNIX are refused rather than taken as `UNSPEC`: a balancer
/// that relays them to a TCP server is misconfigured, and saying so helps.
fn check_family(command: u8, family: u8) -> Result<(), Error> {
    match (command, family) {
        (V2_LOCAL, _) | (_, V2_UNSPEC | V2_TCP4 | V2_TCP6) => Ok(()),
        (_, 0x12 | 0x22 | 0x31 | 0x32) => Err(Error::V2Unsupported(family)),
        _ => Err(Error::V2BadFamily(family)),
    }
}

fn check_length(command: u8, family: u8, len: usize) -> Result<(), Error> {
    let total = V2_FIXED_LEN + len;
    if total > V2_MAX_LEN {
        return Err(Error::V2TooLong(total));
    }
    let needed = match (command, family) {
        (V2_PROXY, V2_TCP4) => V2_INET_LEN,
        (V2_PROXY, V2_TCP6) => V2_INET6_LEN,
        _ => 0,
    };
    if len < needed {
        return Err(Error::V2AddressTooShort { family, len });
    }
    Ok(())
}

/// A whole version 2 header whose fixed part has been checked.
fn parse_v2(buf: &[u8]) -> Result<Header, Error> {
    let (Some(&[version_command, family]), Some(body)) = (buf.get(12..14), buf.get(V2_FIXED_LEN..))
    else {
        return Err(Error::Truncated {
            received: buf.len(),
        });
    };
    let too_short = || Error::V2AddressTooShort {
        family,
        len: body.len(),
    };
    let (source, destination, tlvs) = match (version_command & 0x0f, family) {
        (V2_LOCAL, _) => return Ok(Header::Local),
        (_, V2_TCP4) => v2_addresses::<4>(body).ok_or_else(too_short)?,
        (_, V2_TCP6) => v2_addresses::<16>(body).ok_or_else(too_short)?,
        // UNSPEC: the address block, if any, is to be ignored.
        _ => return Ok(Header::Unknown),
    };
    check_tlvs(tlvs)?;
    Ok(Header::Proxied {
        source,
        destination,
    })
}

/// The source and destination in an address block of `N`-byte addresses, and what follows
/// it; `None` when the block is too short.
fn v2_addresses<const N: usize>(body: &[u8]) -> Option<(SocketAddr, SocketAddr, &[u8])>
where
    IpAddr: From<[u8; N]>,
{
    let (source, rest) = body.split_first_chunk::<N>()?;
    let (destination, rest) = rest.split_first_chunk::<N>()?;
    let (source_port, rest) = rest.split_first_chunk::<2>()?;
    let (destination_port, rest) = rest.split_first_chunk::<2>()?;
    Some((
        SocketAddr::new(IpAddr::from(*source), u16::from_be_bytes(*source_port)),
        SocketAddr::new(
            IpAddr::from(*destination),
            u16::from_be_bytes(*destination_port),
        ),
        rest,
    ))
}

/// TLVs are skipped, but like HAProxy the parser insists that they tile the rest exactly:
/// a TLV cut short means the header is not what its sender meant.
fn check_tlvs(mut rest: &[u8]) -> Result<(), Error> {
    while !rest.is_empty() {
        let [_, high, low, ..] = *rest else {
            return Err(Error::V2BadTlv);
        };
        let len = TLV_HEADER_LEN + usize::from(u16::from_be_bytes([high, low]));
        rest = rest.get(len..).ok_or(Error::V2BadTlv)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Tables of headers, most of them bytes HAProxy 2.6 sent (`send-proxy`, `send-proxy-v2`,
    //! `proxy-v2-options crc32c,unique-id,ssl`, and its health checks), each read whole,
    //! byte by byte and in random splits: every way must agree.

    use super::*;
    use crate::testing::Rng;

    /// Everything a run of the parser can end with; `Complete` counts from the start of the
    /// connection, whatever the pieces.
    #[derive(Debug, Clone, PartialEq)]
    enum Outcome {
        Partial,
        Complete(Header, usize),
        Failed(Error),
    }

    fn run<P: AsRef<[u8]>>(pieces: &[P]) -> Outcome {
        let mut parser = Parser::new();
        let mut offset = 0;
        for piece in pieces {
            let piece = piece.as_ref();
            match parser.feed(piece) {
                Ok(Status::Partial) => offset += piece.len(),
                Ok(Status::Complete { header, consumed }) => {
                    assert!(consumed > 0 && consumed <= piece.len());
                    let again = parser.feed(b"more");
                    assert_eq!(
                        again,
                        Ok(Status::Complete {
                            header,
                            consumed: 0
                        })
                    );
                    assert_eq!(parser.finish(), Ok(header));
                    return Outcome::Complete(header, offset + consumed);
                }
                Err(err) => {
                    assert_eq!(parser.feed(b"more"), Err(err.clone()));
                    assert_eq!(parser.finish(), Err(err.clone()));
                    return Outcome::Failed(err);
                }
            }
        }
        assert_eq!(parser.finish(), Err(Error::Truncated { received: offset }));
        Outcome::Partial
    }

    /// `input` read whole, byte by byte and in random splits: all must agree, and an input
    /// as long as the bound is always decided.
    fn run_every_way(input: &[u8]) -> Outcome {
        let whole = run(&[input]);
        let bytes: Vec<[u8; 1]> = input.iter().map(|&b| [b]).collect();
        assert_eq!(
            run(&bytes),
            whole,
            "byte by byte: {:?}",
            input.escape_ascii().to_string()
        );
        let mut rng = Rng::new(input.len() as u64 + 1);
        for _ in 0..8 {
            assert_eq!(run(&rng.split(input)), whole, "random split");
        }
        if input.len() >= MAX_LEN {
            assert_ne!(whole, Outcome::Partial, "undecided after {MAX_LEN} bytes");
        }
        whole
    }

    /// Bytes from hexadecimal digits; spaces are for the reader.
    fn hex(digits: &str) -> Vec<u8> {
        let digits: Vec<u8> = digits
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// A version 2 header: the signature, then `rest` in hexadecimal.
    fn v2(rest: &str) -> Vec<u8> {
        let mut header = V2_SIGNATURE.to_vec();
        header.extend(hex(rest));
        header
    }

    fn proxied(source: &str, destination: &str) -> Header {
        Header::Proxied {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        }
    }

    fn not_proxy(start: &[u8]) -> Outcome {
        Outcome::Failed(Error::NotProxy {
            start: start.to_vec(),
        })
    }

    fn failed(err: Error) -> Outcome {
        Outcome::Failed(err)
    }

    fn s(text: &str) -> String {
        text.to_string()
    }

    /// A complete header followed by what the client sent next: `consumed` must be the
    /// header's length whatever the split.
    fn check_complete(name: &str, header: &[u8], rest: &[u8], want: Header) {
        let input = [header, rest].concat();
        let got = run_every_way(&input);
        assert_eq!(got, Outcome::Complete(want, header.len()), "{name}");
    }

    fn check(name: &str, input: &[u8], want: Outcome) {
        assert_eq!(run_every_way(input), want, "{name}");
    }

    /// The specification's worst case, exactly [`V1_MAX_LEN`] bytes.
    fn longest_v1() -> Vec<u8> {
        let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n").into_bytes()
    }

    #[test]
    fn valid_v1_headers() {
        let hello = b"hello".as_slice();
        #[rustfmt::skip]
        let cases: &[(&str, &[u8], &[u8], Header)] = &[
            ("haproxy tcp4", b"PROXY TCP4 127.0.0.1 127.0.0.1 37106 45915\r\n", hello, proxied("127.0.0.1:37106", "127.0.0.1:45915")),
            ("haproxy tcp6", b"PROXY TCP6 ::1 ::1 58978 35505\r\n", hello, proxied("[::1]:58978", "[::1]:35505")),
            ("haproxy v1 health check", b"PROXY TCP4 127.0.0.1 127.0.0.1 49034 45873\r\n", b"", proxied("127.0.0.1:49034", "127.0.0.1:45873")),
            ("spec example", b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", b"GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n", proxied("192.168.0.1:56324", "192.168.0.11:443")),
            ("longest tcp4", b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", hello, proxied("255.255.255.255:65535", "255.255.255.255:65535")),
            ("port zero", b"PROXY TCP4 10.0.0.1 10.0.0.2 0 0\r\n", hello, proxied("10.0.0.1:0", "10.0.0.2:0")),
            ("tcp6 upper case, uncompressed", b"PROXY TCP6 2001:DB8:0:0:0:0:0:1 FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 1 65535\r\n", hello, proxied("[2001:db8::1]:1", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")),
            ("tcp6 v4-mapped", b"PROXY TCP6 ::ffff:192.0.2.1 ::ffff:192.0.2.2 1 2\r\n", hello, proxied("[::ffff:192.0.2.1]:1", "[::ffff:192.0.2.2]:2")),
            ("unknown, short form", b"PROXY UNKNOWN\r\n", hello, Header::Unknown),
            ("unknown, rest ignored", b"PROXY UNKNOWN what\xffever \r\n", hello, Header::Unknown),
            ("unknown, longest line", &longest_v1(), hello, Header::Unknown),
            ("pipelined header-like bytes", b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN\r\n", Header::Unknown),
        ];
        assert_eq!(longest_v1().len(), V1_MAX_LEN);
        for (name, header, rest, want) in cases {
            check_complete(name, header, rest, *want);
        }
    }

    #[test]
    fn invalid_v1_headers() {
        let bad_address = |text: &str| failed(Error::V1BadAddress(s(text)));
        let bad_port = |text: &str| failed(Error::V1BadPort(s(text)));
        let too_long = [b"PROXY UNKNOWN ".as_slice(), &[b'f'; 92], b"\r\n"].concat();
        let no_line_end = [b"PROXY ".as_slice(), &[b'A'; 300]].concat();
        #[rustfmt::skip]
        let cases: &[(&str, &[u8], Outcome)] = &[
            ("hello without a header", b"hello\n", not_proxy(b"h")),
            ("http", b"GET / HTTP/1.1\r\n\r\n", not_proxy(b"G")),
            ("tls client hello", b"\x16\x03\x01\x02\x00\x01", not_proxy(b"\x16")),
            ("lower case", b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", not_proxy(b"p")),
            ("signature typo", b"PROXZ TCP4", not_proxy(b"PROXZ")),
            ("no space after PROXY", b"PROXY\r\n", not_proxy(b"PROXY\r")),
            ("tab after PROXY", b"PROXY\tTCP4", not_proxy(b"PROXY\t")),
            ("unknown protocol", b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", failed(Error::V1BadProtocol(s("TCP5")))),
            ("udp", b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", failed(Error::V1BadProtocol(s("UDP4")))),
            ("unknown with a suffix", b"PROXY UNKNOWNX\r\n", failed(Error::V1BadProtocol(s("UNKNOWNX")))),
            ("empty protocol", b"PROXY \r\n", failed(Error::V1BadProtocol(s("")))),
            ("two spaces before protocol", b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", failed(Error::V1BadProtocol(s("")))),
            ("protocol alone", b"PROXY TCP4\r\n", failed(Error::V1BadFields)),
            ("missing port", b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", failed(Error::V1BadFields)),
            ("extra field", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", failed(Error::V1BadFields)),
            ("trailing space", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", failed(Error::V1BadFields)),
            ("double space", b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", failed(Error::V1BadFields)),
            ("three octets", b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", bad_address("1.2.3")),
            ("octet over 255", b"PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n", bad_address("5.6.7.256")),
            ("octal-looking octet", b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", bad_address("01.2.3.4")),
            ("ipv6 in tcp4", b"PROXY TCP4 ::1 ::1 1 2\r\n", bad_address("::1")),
            ("ipv4 in tcp6", b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", bad_address("1.2.3.4")),
            ("ipv6 zone", b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", bad_address("fe80::1%eth0")),
            ("ipv6 two double colons", b"PROXY TCP6 1::2::3 ::1 1 2\r\n", bad_address("1::2::3")),
            ("bracketed ipv6", b"PROXY TCP6 [::1] ::1 1 2\r\n", bad_address("[::1]")),
            ("not utf-8", b"PROXY TCP4 \xff.2.3.4 5.6.7.8 1 2\r\n", bad_address("\u{fffd}.2.3.4")),
            ("leading zero port", b"PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", bad_port("080")),
            ("signed port", b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", bad_port("+80")),
            ("negative port", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", bad_port("-2")),
            ("hex port", b"PROXY TCP4 1.2.3.4 5.6.7.8 0x50 2\r\n", bad_port("0x50")),
            ("port 65536", b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", failed(Error::V1PortOutOfRange(s("65536")))),
            ("port overflowing 64 bits", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999999999999999999\r\n", failed(Error::V1PortOutOfRange(s("99999999999999999999999")))),
            ("bare LF", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", failed(Error::V1BadLineEnding)),
            ("bare CR", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", failed(Error::V1BadLineEnding)),
            ("CR CR LF", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", failed(Error::V1BadLineEnding)),
            ("LF inside unknown", b"PROXY UNKNOWN a\nb\r\n", failed(Error::V1BadLineEnding)),
            ("line of 108 bytes", &too_long, failed(Error::V1TooLong)),
            ("no line ending at all", &no_line_end, failed(Error::V1TooLong)),
            ("truncated line", b"PROXY TCP4 1.2.3.4 5.6", Outcome::Partial),
            ("truncated before CRLF", b"PROXY UNKNOWN\r", Outcome::Partial),
            ("truncated signature", b"PRO", Outcome::Partial),
            ("nothing", b"", Outcome::Partial),
        ];
        assert_eq!(too_long.len(), V1_MAX_LEN + 1);
        for (name, input, want) in cases {
            check(name, input, want.clone());
        }
    }

    #[test]
    fn valid_v2_headers() {
        let hello = b"hello".as_slice();
        let at_bound = v2(&format!(
            "21 11 {:04x} 0a000001 0a000002 0001 0002 e0 {:04x} {}",
            V2_MAX_LEN - V2_FIXED_LEN,
            V2_MAX_LEN - V2_FIXED_LEN - V2_INET_LEN - 3,
            "00".repeat(V2_MAX_LEN - V2_FIXED_LEN - V2_INET_LEN - 3)
        ));
        #[rustfmt::skip]
        let cases: &[(&str, Vec<u8>, &[u8], Header)] = &[
            ("haproxy health check", v2("20 00 0000"), b"", Header::Local),
            ("haproxy health check, crc32c and ssl tlvs", v2("20 00 000f 03 0004 889da1df 20 0005 0000000000"), b"", Header::Local),
            ("haproxy tcp4", v2("21 11 000c 7f000001 7f000001 a15a aad5"), hello, proxied("127.0.0.1:41306", "127.0.0.1:43733")),
            ("haproxy tcp4, crc32c, unique-id and ssl tlvs", v2("21 11 001e 7f000001 7f000001 ed9a 8aa9 03 0004 086c34dc 05 0000 20 0005 0000000000"), hello, proxied("127.0.0.1:60826", "127.0.0.1:35497")),
            ("haproxy tcp6", v2("21 21 0024 00000000000000000000000000000001 00000000000000000000000000000001 b91c a1a1"), hello, proxied("[::1]:47388", "[::1]:41377")),
            ("tcp6 with a noop tlv", v2("21 21 0027 20010db8000000000000000000000001 20010db8000000000000000000000002 ffff 0000 04 0000"), hello, proxied("[2001:db8::1]:65535", "[2001:db8::2]:0")),
            ("proxy unspec", v2("21 00 0000"), hello, Header::Unknown),
            ("proxy unspec with an address block", v2("21 00 0003 010203"), hello, Header::Unknown),
            ("local with addresses", v2("20 11 000c 7f000001 7f000001 a15a aad5"), hello, Header::Local),
            ("local with an undefined family", v2("20 ff 0002 abcd"), hello, Header::Local),
            ("local says unix", v2("20 31 0000"), hello, Header::Local),
            ("header of exactly the bound", at_bound, hello, proxied("10.0.0.1:1", "10.0.0.2:2")),
            ("a v1 header after a v2 one", v2("20 00 0000"), b"PROXY UNKNOWN\r\n", Header::Local),
        ];
        for (name, header, rest, want) in cases {
            check_complete(name, header, rest, *want);
        }
    }

    #[test]
    fn invalid_v2_headers() {
        let sig = V2_SIGNATURE;
        let wrong_last = [&sig[..11], b"\x0b"].concat();
        let truncated = v2("21 11 000c 7f000001 7f000001 a15a aa");
        #[rustfmt::skip]
        let cases: &[(&str, Vec<u8>, Outcome)] = &[
            ("CRLF then hello", b"\r\nhello".to_vec(), not_proxy(b"\r\nh")),
            ("blank line", b"\r\n\r\n\r\n".to_vec(), not_proxy(b"\r\n\r\n\r")),
            ("last signature byte wrong", wrong_last.clone(), not_proxy(&wrong_last)),
            ("version 1", v2("11 11 000c"), failed(Error::V2BadVersion(1))),
            ("version 3", v2("31 11 000c"), failed(Error::V2BadVersion(3))),
            ("version 0", v2("00 00 0000"), failed(Error::V2BadVersion(0))),
            ("command 2", v2("22 11 000c"), failed(Error::V2BadCommand(2))),
            ("command 15", v2("2f 11 000c"), failed(Error::V2BadCommand(15))),
            ("udp over ipv4", v2("21 12 000c"), failed(Error::V2Unsupported(0x12))),
            ("udp over ipv6", v2("21 22 0024"), failed(Error::V2Unsupported(0x22))),
            ("unix stream", v2("21 31 00d8"), failed(Error::V2Unsupported(0x31))),
            ("unix datagram", v2("21 32 00d8"), failed(Error::V2Unsupported(0x32))),
            ("family 4", v2("21 41 000c"), failed(Error::V2BadFamily(0x41))),
            ("protocol 3", v2("21 13 000c"), failed(Error::V2BadFamily(0x13))),
            ("ipv4 without protocol", v2("21 10 000c"), failed(Error::V2BadFamily(0x10))),
            ("stream without family", v2("21 01 0000"), failed(Error::V2BadFamily(0x01))),
            ("one byte over the bound", v2(&format!("21 11 {:04x}", V2_MAX_LEN - V2_FIXED_LEN + 1)), failed(Error::V2TooLong(V2_MAX_LEN + 1))),
            ("largest length field", v2("21 11 ffff"), failed(Error::V2TooLong(V2_FIXED_LEN + 0xffff))),
            ("local over the bound", v2("20 00 ffff"), failed(Error::V2TooLong(V2_FIXED_LEN + 0xffff))),
            ("tcp4 block too short", v2("21 11 000b 7f000001 7f000001 a15a aa"), failed(Error::V2AddressTooShort { family: 0x11, len: 11 })),
            ("tcp6 with a tcp4 block", v2("21 21 000c 7f000001 7f000001 a15a aad5"), failed(Error::V2AddressTooShort { family: 0x21, len: 12 })),
            ("tcp4 without a block", v2("21 11 0000"), failed(Error::V2AddressTooShort { family: 0x11, len: 0 })),
            ("two stray bytes after the block", v2("21 11 000e 7f000001 7f000001 a15a aad5 0000"), failed(Error::V2BadTlv)),
            ("tlv longer than the header", v2("21 11 0010 7f000001 7f000001 a15a aad5 04 0002 00"), failed(Error::V2BadTlv)),
            ("second tlv cut short", v2("21 11 0012 7f000001 7f000001 a15a aad5 04 0000 04 0001"), failed(Error::V2BadTlv)),
            ("truncated address block", truncated, Outcome::Partial),
            ("signature only", sig.to_vec(), Outcome::Partial),
            ("fixed part only", v2("21 11 000c"), Outcome::Partial),
        ];
        for (name, input, want) in cases {
            check(name, input, want.clone());
        }
    }

    #[test]
    fn a_client_without_a_header_is_refused_on_its_first_byte() {
        for first in (0..=255u8).filter(|b| ![b'P', b'\r'].contains(b)) {
            let mut parser = Parser::new();
            let want = Error::NotProxy { start: vec![first] };
            assert_eq!(parser.feed(&[first]), Err(want));
        }
    }

    #[test]
    fn a_closed_connection_says_how_much_came() {
        let mut parser = Parser::new();
        assert_eq!(parser.finish(), Err(Error::Truncated { received: 0 }));
        assert_eq!(parser.feed(b"PROXY TCP4"), Ok(Status::Partial));
        assert_eq!(parser.finish(), Err(Error::Truncated { received: 10 }));
    }

    #[test]
    fn the_client_is_the_source_or_else_the_peer() {
        let peer: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        let header = proxied("192.0.2.1:5555", "10.0.0.9:9999");
        assert_eq!(header.client(peer), "192.0.2.1:5555".parse().unwrap());
        assert_eq!(Header::Local.client(peer), peer);
        assert_eq!(Header::Unknown.client(peer), peer);
    }

    #[test]
    fn parse_counts_from_the_start() {
        let input = b"PROXY UNKNOWN\r\nhello";
        let want = Status::Complete {
            header: Header::Unknown,
            consumed: 15,
        };
        assert_eq!(parse(input), Ok(want));
    }

    /// Mangled real headers, random bytes and random lengths: every way of feeding them
    /// agrees, nothing panics, and no input is left undecided past the bound.
    #[test]
    fn mangled_headers_are_split_invariant() {
        let seeds: Vec<Vec<u8>> = vec![
            b"PROXY TCP4 127.0.0.1 127.0.0.1 37106 45915\r\nhello".to_vec(),
            b"PROXY TCP6 ::1 ::1 58978 35505\r\n".to_vec(),
            longest_v1(),
            v2("21 11 001e 7f000001 7f000001 ed9a 8aa9 03 0004 086c34dc 05 0000 20 0005 0000000000"),
            v2("21 21 0024 00000000000000000000000000000001 00000000000000000000000000000001 b91c a1a1"),
            v2("20 00 0000"),
        ];
        let mut rng = Rng::new(13);
        for round in 0..2000 {
            let mut input = seeds[round % seeds.len()].clone();
            for _ in 0..rng.below(4) {
                let at = rng.below(input.len() + 1);
                match rng.below(4) {
                    0 if at < input.len() => input[at] = rng.next_u64() as u8,
                    1 => input.truncate(at),
                    2 => input.insert(at, rng.next_u64() as u8),
                    _ => input.extend(std::iter::repeat_n(b'x', rng.below(MAX_LEN + 10))),
                }
            }
            run_every_way(&input);
        }
    }

    #[test]
    fn errors_are_one_lowercase_line() {
        let errors = [
            Error::NotProxy {
                start: b"h\r\n\x00".to_vec(),
            },
            Error::Truncated { received: 0 },
            Error::Truncated { received: 3 },
            Error::V1TooLong,
            Error::V1BadLineEnding,
            Error::V1BadProtocol(s("TCP5")),
            Error::V1BadFields,
            Error::V1BadAddress(s("1.2.3\r\n")),
            Error::V1BadPort(s("080")),
            Error::V1PortOutOfRange(s("65536")),
            Error::V2BadVersion(3),
            Error::V2BadCommand(2),
            Error::V2BadFamily(0x41),
            Error::V2Unsupported(0x12),
            Error::V2TooLong(V2_MAX_LEN + 1),
            Error::V2AddressTooShort {
                family: 0x21,
                len: 12,
            },
            Error::V2BadTlv,
        ];
        for err in errors {
            let text = err.to_string();
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
            assert!(
                !text.ends_with('.') && !text.contains('\n') && !text.contains('\r'),
                "{text}"
            );
        }
        let text = Error::NotProxy {
            start: b"hel".to_vec(),
        }
        .to_string();
        assert_eq!(text, "not a proxy protocol header: it begins with \"hel\"");
        let text = Error::V2Unsupported(0x12).to_string();
        assert_eq!(
            text,
            "proxy protocol v2 relays UDP over IPv4, only TCP is supported"
        );
    }
}
