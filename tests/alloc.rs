//! The server's hot path does not allocate: once a connection is warm, a round trip costs no
//! heap allocation on either side. Counted with a global allocator that tallies every
//! allocation in this test process (server threads included: the server runs in-process).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use sockdemo::hello::client::Connection;
use sockdemo::hello::protocol::{Exchange, Mode, GREETING};
use sockdemo::hello::server::{Config, Server};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_warm_round_trip_allocates_nothing_in_either_mode() {
    let server = Server::bind(Config {
        port: 0,
        ..Config::default()
    })
    .expect("bind");
    let addr = server.local_addr();
    thread::spawn(move || server.run());

    for mode in [Mode::Raw, Mode::Lines] {
        let mut conn =
            Connection::open("127.0.0.1", addr.port(), Duration::from_secs(20)).expect("connect");
        conn.expect(GREETING, "greeting").expect("greeting");
        if mode == Mode::Lines {
            conn.enter_line_mode().expect("line mode");
        }
        let exchange = Exchange::new(b"hot path", mode);
        let mut round_trips = |n: usize| {
            for _ in 0..n {
                conn.round_trip(&exchange).expect("round trip");
            }
        };
        round_trips(100);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        round_trips(2000);
        let allocated = ALLOCATIONS.load(Ordering::Relaxed) - before;
        // Nothing per message; a handful for whatever else the process does meanwhile.
        assert!(
            allocated < 20,
            "{mode:?}: {allocated} allocations in 2000 round trips"
        );
    }
}
