//! How many more threads this process can start, so that the server and bench admit only
//! what the system can give. One thread per connection is the tutorial's design; its limit is
//! not the CPU but the kernel's tables, and a thread that cannot be made must be a refusal
//! we chose, not a crash.
//!
//! Why a crash: `thread::Builder::spawn` returns an error when `pthread_create` fails, but
//! std sets up each new thread's signal stack (an `mmap` and a guard page) inside the new
//! thread, where a failure panics and the panic aborts the whole process. Each thread costs
//! about four memory mappings (its stack and guard page, the signal stack and its guard page),
//! so at `vm.max_map_count` (65530 by default, about 16,000 threads) the next thread takes the
//! process down. The budget here keeps us well below that, and below the two limits that make
//! `pthread_create` itself fail: `kernel.threads-max` for the whole system and
//! `RLIMIT_NPROC` (`ulimit -u`) for the user. Everything is read from `/proc`; nothing here
//! needs `unsafe`.

use std::fmt;
use std::fs;

/// Memory mappings counted per thread: its stack and guard page, std's signal stack and
/// guard page, and one more for a large buffer (an allocation past the allocator's mmap
/// threshold is a mapping of its own).
const MAPS_PER_THREAD: u64 = 5;
/// Mappings left for everything else: libraries, allocator arenas, buffers.
const MAP_RESERVE: u64 = 1024;
/// Threads left to the rest of the system (threads-max) or of the user (RLIMIT_NPROC).
const THREAD_RESERVE: u64 = 64;

/// How many more threads this process may start, and which limit says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Threads, beyond those running now.
    pub threads: usize,
    /// The limit that decided it.
    pub limit: Limit,
}

/// The limit a [`Budget`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `vm.max_map_count`, with its value.
    MapCount(u64),
    /// `kernel.threads-max`, with its value.
    ThreadsMax(u64),
    /// RLIMIT_NPROC, with its value.
    Nproc(u64),
    /// Given by the caller (a config, or a test).
    Given,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let threads = self.threads;
        match self.limit {
            Limit::MapCount(n) => write!(
                f,
                "this system can start about {threads} more threads (vm.max_map_count is {n})"
            ),
            Limit::ThreadsMax(n) => write!(
                f,
                "this system can start about {threads} more threads (kernel.threads-max is {n})"
            ),
            Limit::Nproc(n) => write!(
                f,
                "this user can start about {threads} more threads (ulimit -u is {n})"
            ),
            Limit::Given => write!(f, "at most {threads} more threads are allowed"),
        }
    }
}

impl Budget {
    /// A budget of `threads`, as given by the caller.
    pub fn given(threads: usize) -> Budget {
        Budget {
            threads,
            limit: Limit::Given,
        }
    }
}

/// The budget `given`, or else the one this system's limits allow now (`None`: no limit
/// could be read, as on a system without `/proc`).
pub fn budget(given: Option<usize>) -> Option<Budget> {
    match given {
        Some(threads) => Some(Budget::given(threads)),
        None => Limits::read().budget(),
    }
}

/// What `/proc` says about the limits on threads and the use of them now. A field that could
/// not be read is `None`, and that limit is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `vm.max_map_count`: mappings a process may have.
    pub max_map_count: Option<u64>,
    /// Mappings this process has now.
    pub maps: Option<u64>,
    /// `kernel.threads-max`: threads the whole system may have.
    pub threads_max: Option<u64>,
    /// Threads the whole system has now.
    pub system_threads: Option<u64>,
    /// RLIMIT_NPROC's soft value (`None` when unlimited): threads the user may have.
    pub nproc: Option<u64>,
    /// Threads this process has now.
    pub own_threads: Option<u64>,
    /// Whether the real user is root, whom RLIMIT_NPROC does not bind.
    pub root: bool,
}

impl Limits {
    /// Reads this process's and this system's limits from `/proc`.
    pub fn read() -> Limits {
        let read = |path: &str| fs::read_to_string(path).ok();
        let status = read("/proc/self/status").unwrap_or_default();
        Limits {
            max_map_count: read("/proc/sys/vm/max_map_count").and_then(|t| number(&t)),
            maps: read("/proc/self/maps").map(|t| t.lines().count() as u64),
            threads_max: read("/proc/sys/kernel/threads-max").and_then(|t| number(&t)),
            system_threads: read("/proc/loadavg").and_then(|t| loadavg_threads(&t)),
            nproc: read("/proc/self/limits").and_then(|t| nproc_limit(&t)),
            own_threads: status_field(&status, "Threads:"),
            root: status_field(&status, "Uid:") == Some(0),
        }
    }

    /// The tightest of the limits that could be read, less a reserve for everything else.
    pub fn budget(&self) -> Option<Budget> {
        let by_maps = self.max_map_count.map(|max| {
            let free = max.saturating_sub(self.maps.unwrap_or(0) + MAP_RESERVE);
            (free / MAPS_PER_THREAD, Limit::MapCount(max))
        });
        let by_system = self.threads_max.map(|max| {
            let used = self.system_threads.unwrap_or(0) + THREAD_RESERVE;
            (max.saturating_sub(used), Limit::ThreadsMax(max))
        });
        let by_user = self.nproc.filter(|_| !self.root).map(|max| {
            // The user's other processes count too, but cannot be seen cheaply: a spawn
            // that fails on them is handled as a refusal by the caller.
            let used = self.own_threads.unwrap_or(1);
            (max.saturating_sub(used), Limit::Nproc(max))
        });
        [by_maps, by_system, by_user]
            .into_iter()
            .flatten()
            .min_by_key(|(threads, _)| *threads)
            .map(|(threads, limit)| Budget {
                threads: usize::try_from(threads).unwrap_or(usize::MAX),
                limit,
            })
    }
}

/// A file that holds one number, such as `/proc/sys/vm/max_map_count`.
fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The threads of the whole system, from `/proc/loadavg` (`0.00 0.01 0.05 1/234 5678`: the
/// fourth field is runnable/total scheduling entities, which are threads).
fn loadavg_threads(text: &str) -> Option<u64> {
    let field = text.split_whitespace().nth(3)?;
    number(field.split_once('/')?.1)
}

/// RLIMIT_NPROC's soft value from `/proc/self/limits`; `None` when unlimited or absent.
fn nproc_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max processes"))?;
    let soft = line["Max processes".len()..].split_whitespace().next()?;
    number(soft)
}

/// The first number after `field` in `/proc/self/status` (for `Uid:`, the real user).
fn status_field(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    number(line[field.len()..].split_whitespace().next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        assert_eq!(number("65530\n"), Some(65530));
        assert_eq!(loadavg_threads("7.41 6.15 3.24 6/190 9232\n"), Some(190));
        assert_eq!(loadavg_threads("garbage"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max processes             96551                96551                processes \n";
        assert_eq!(nproc_limit(limits), Some(96551));
        let unlimited =
            "Max processes             unlimited            unlimited            processes \n";
        assert_eq!(nproc_limit(unlimited), None);
        let status = "Name:\tsockdemo\nUid:\t1000\t1000\t1000\t1000\nThreads:\t3\n";
        assert_eq!(status_field(status, "Uid:"), Some(1000));
        assert_eq!(status_field(status, "Threads:"), Some(3));
    }

    #[test]
    fn the_map_count_is_the_limit_on_a_default_linux() {
        let limits = Limits {
            max_map_count: Some(65530),
            maps: Some(40),
            threads_max: Some(193_102),
            system_threads: Some(190),
            nproc: Some(96551),
            own_threads: Some(2),
            root: false,
        };
        let budget = limits.budget().expect("a budget");
        assert_eq!(budget.limit, Limit::MapCount(65530));
        // Far below the ~16,000 threads at which std aborts, and above any sane -c.
        assert_eq!(budget.threads, (65530 - 40 - 1024) / 5);
        assert!(budget.to_string().contains("vm.max_map_count is 65530"));
    }

    #[test]
    fn a_users_process_limit_binds_everyone_but_root() {
        let limits = Limits {
            max_map_count: Some(65530),
            maps: Some(40),
            nproc: Some(100),
            own_threads: Some(3),
            ..Limits::default()
        };
        assert_eq!(
            limits.budget(),
            Some(Budget {
                threads: 97,
                limit: Limit::Nproc(100)
            })
        );
        let root = Limits {
            root: true,
            ..limits
        };
        assert_eq!(root.budget().map(|b| b.limit), Some(Limit::MapCount(65530)));
    }

    #[test]
    fn a_system_near_its_limits_has_no_budget_left_not_a_negative_one() {
        let limits = Limits {
            max_map_count: Some(1000),
            maps: Some(900),
            threads_max: Some(100),
            system_threads: Some(500),
            ..Limits::default()
        };
        assert_eq!(limits.budget().map(|b| b.threads), Some(0));
        assert_eq!(Limits::default().budget(), None);
    }

    #[test]
    fn this_system_has_a_budget() {
        let budget = budget(None).expect("Linux has /proc");
        assert!(budget.threads > 0, "{budget}");
        assert_eq!(super::budget(Some(7)), Some(Budget::given(7)));
    }
}
