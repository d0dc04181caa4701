//! Happy Eyeballs against real sockets on loopback. An address whose connect hangs, as a
//! dead route's does, is a listener whose accept queue is full: Linux drops the SYNs it
//! cannot queue, so the connect waits for its timeout. A refused one is a closed port.

use std::net::TcpListener;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A listener on `ip` that answers nobody: its queue (backlog 0) is filled first. It and the
/// connections filling it live as long as the value.
struct Hanging {
    addr: SocketAddr,
    _listener: Socket,
    _queued: Vec<TcpStream>,
}

impl Hanging {
    fn on(ip: &str) -> Hanging {
        let addr: SocketAddr = format!("{ip}:0").parse().unwrap();
        let listener = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
        listener.bind(&addr.into()).unwrap();
        listener.listen(0).unwrap();
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        let mut queued = Vec::new();
        while let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            queued.push(stream);
            assert!(queued.len() < 16, "the accept queue never fills");
        }
        Hanging {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }
}

/// An address nobody listens on.
fn refused(ip: &str) -> SocketAddr {
    let listener = TcpListener::bind(format!("{ip}:0")).unwrap();
    listener.local_addr().unwrap()
}

/// Sockets of this process still trying to connect (SYN_SENT) to `port`, from /proc.
fn connecting_to(port: u16) -> usize {
    let port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .map(|line| line.split_whitespace().map(str::to_string).collect())
                .collect::<Vec<Vec<String>>>()
        })
        .filter(|fields| fields.len() > 3 && fields[2].ends_with(&port) && fields[3] == "02")
        .count()
}

#[test]
fn families_alternate_from_the_resolvers_first_choice() {
    let a: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
    let b: SocketAddr = "[2001:db8::2]:80".parse().unwrap();
    let c: SocketAddr = "[2001:db8::3]:80".parse().unwrap();
    let x: SocketAddr = "192.0.2.1:80".parse().unwrap();
    let y: SocketAddr = "192.0.2.2:80".parse().unwrap();
    let cases: &[(&[SocketAddr], &[SocketAddr])] = &[
        (&[], &[]),
        (&[a], &[a]),
        (&[a, b, x, y], &[a, x, b, y]),
        (&[x, y, a, b], &[x, a, y, b]),
        (&[a, b, c, x], &[a, x, b, c]),
        (&[x, a, b, c], &[x, a, b, c]),
        (&[a, x, b, y, c], &[a, x, b, y, c]),
    ];
    for (given, want) in cases {
        assert_eq!(interleave(given), *want, "{given:?}");
    }
}

#[test]
fn a_hanging_ipv6_address_costs_a_quarter_second_not_the_timeout() {
    let hanging = Hanging::on("[::1]");
    let good = TcpListener::bind("127.0.0.1:0").unwrap();
    let good_addr = good.local_addr().unwrap();
    let began = Instant::now();
    let stream = happy_eyeballs(&[hanging.addr, good_addr], TIMEOUT, Some(TIMEOUT)).unwrap();
    let took = began.elapsed();
    assert_eq!(stream.peer_addr().unwrap(), good_addr);
    assert!(
        took >= ATTEMPT_DELAY - Duration::from_millis(20),
        "{took:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(stream.read_timeout().unwrap(), Some(TIMEOUT));
    assert!(stream.nodelay().unwrap());
    // The losing attempt is shut down, not left to its ten-second timeout.
    let deadline = Instant::now() + Duration::from_secs(2);
    while connecting_to(hanging.addr.port()) > 0 {
        assert!(
            Instant::now() < deadline,
            "the losing attempt still connects"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_refused_address_starts_the_next_family_at_once() {
    let good = TcpListener::bind("127.0.0.1:0").unwrap();
    let good_addr = good.local_addr().unwrap();
    let began = Instant::now();
    let stream = happy_eyeballs(&[refused("[::1]"), good_addr], TIMEOUT, None).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), good_addr);
    assert!(began.elapsed() < ATTEMPT_DELAY, "{:?}", began.elapsed());
}

#[test]
fn the_first_address_still_wins_when_it_answers_in_time() {
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = [v6.local_addr().unwrap(), v4.local_addr().unwrap()];
    let stream = happy_eyeballs(&addrs, TIMEOUT, None).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addrs[0]);
}

#[test]
fn when_every_address_is_refused_the_error_names_the_last() {
    let addrs = [refused("[::1]"), refused("127.0.0.1")];
    let err = happy_eyeballs(&addrs, TIMEOUT, None).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!("cannot connect to {}: connection refused", addrs[1])
    );
}

#[test]
fn each_attempt_keeps_its_own_connect_timeout() {
    let v6 = Hanging::on("[::1]");
    let v4 = Hanging::on("127.0.0.1");
    let timeout = Duration::from_millis(600);
    let began = Instant::now();
    let err = happy_eyeballs(&[v6.addr, v4.addr], timeout, None).unwrap_err();
    let took = began.elapsed();
    // The IPv4 attempt starts a quarter second in and gets its whole timeout.
    assert!(
        took >= ATTEMPT_DELAY + timeout - Duration::from_millis(50),
        "{took:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert_eq!(
        format!("{err:#}"),
        format!("cannot connect to {}: timed out", v4.addr)
    );
    assert!(crate::net::io_error(&err).is_some_and(crate::net::is_timeout));
}

#[test]
fn one_family_is_tried_in_turn_without_a_race() {
    let hanging = Hanging::on("127.0.0.1");
    let good = TcpListener::bind("127.0.0.1:0").unwrap();
    let addrs = [hanging.addr, good.local_addr().unwrap()];
    let timeout = Duration::from_millis(400);
    let began = Instant::now();
    let stream = happy_eyeballs(&addrs, timeout, None).unwrap();
    assert_eq!(stream.peer_addr().unwrap(), addrs[1]);
    assert!(began.elapsed() >= timeout - Duration::from_millis(50));
}
