//! Round-trip latencies: recorded by each client without allocating, merged into
//! percentiles at the end. No sockets here.
//!
//! The method is exact rather than a histogram: each client keeps its latencies as `u32`
//! nanoseconds in a buffer allocated before timing starts, and the percentiles are read off
//! the merged, sorted samples (nearest rank). The buffers are bounded: a bench holds at most
//! [`LATENCY_BUDGET`] samples in all (16 MiB). While every round trip fits, the figures are
//! exact to the nanosecond. Past that (a long `--duration`, or a huge `-c` times `-n`), each
//! client keeps a uniform random sample of its round trips (reservoir sampling, algorithm R)
//! and every kept sample stands for `seen / kept` round trips of its client when merged, so
//! the percentiles become estimates; the summary says so. The maximum is always exact.
//! A sample of 4.29 s or more is stored as `u32::MAX` ns; the maximum keeps its real value.

use std::time::Duration;

/// Samples kept by all clients together, at most.
pub const LATENCY_BUDGET: usize = 1 << 22;
/// Samples kept by one client, at least, however many clients there are.
const MIN_PER_CLIENT: usize = 64;

/// How many samples each of `clients` clients may keep when it does `rounds` round trips
/// (`None`: as many as time allows).
pub fn capacity_per_client(clients: usize, rounds: Option<u64>) -> usize {
    let share = (LATENCY_BUDGET / clients.max(1)).max(MIN_PER_CLIENT);
    match rounds {
        Some(n) => share.min(usize::try_from(n).unwrap_or(usize::MAX)),
        None => share,
    }
}

/// One client's latencies.
#[derive(Debug)]
pub struct Samples {
    kept: Vec<u32>,
    capacity: usize,
    seen: u64,
    max_ns: u64,
    /// xorshift64 state for the reservoir; never zero.
    rng: u64,
}

impl Samples {
    /// Room for `capacity` samples, allocated now; `seed` varies the reservoir per client.
    pub fn with_capacity(capacity: usize, seed: u64) -> Self {
        Samples {
            kept: Vec::with_capacity(capacity),
            capacity,
            seen: 0,
            max_ns: 0,
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        }
    }

    /// Records one round trip. Never allocates.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.seen += 1;
        self.max_ns = self.max_ns.max(ns);
        let value = u32::try_from(ns).unwrap_or(u32::MAX);
        if self.kept.len() < self.capacity {
            self.kept.push(value);
            return;
        }
        // Algorithm R: the n-th sample replaces a kept one with probability capacity / n.
        let slot = self.next_random() % self.seen;
        if let Some(kept) = usize::try_from(slot)
            .ok()
            .and_then(|slot| self.kept.get_mut(slot))
        {
            *kept = value;
        }
    }

    /// Round trips recorded, kept or not.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

/// The latency figures of a whole bench, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// The slowest round trip.
    pub max: u64,
    /// Samples the percentiles come from.
    pub kept: u64,
    /// Round trips measured; more than `kept` when the clients had to sample.
    pub seen: u64,
}

impl Latency {
    /// Merges every client's samples; `None` when no round trip was measured.
    pub fn merge<'a>(all: impl IntoIterator<Item = &'a Samples>) -> Option<Latency> {
        let all: Vec<&Samples> = all.into_iter().collect();
        let mut weighted: Vec<(u32, f32)> =
            Vec::with_capacity(all.iter().map(|s| s.kept.len()).sum());
        for samples in &all {
            if samples.kept.is_empty() {
                continue;
            }
            let weight = samples.seen as f64 / samples.kept.len() as f64;
            weighted.extend(samples.kept.iter().map(|&v| (v, weight as f32)));
        }
        if weighted.is_empty() {
            return None;
        }
        weighted.sort_unstable_by_key(|&(value, _)| value);
        let total: f64 = weighted.iter().map(|&(_, w)| f64::from(w)).sum();
        Some(Latency {
            p50: percentile(&weighted, total, 5_000),
            p90: percentile(&weighted, total, 9_000),
            p99: percentile(&weighted, total, 9_900),
            max: all.iter().map(|s| s.max_ns).max().unwrap_or(0),
            kept: weighted.len() as u64,
            seen: all.iter().map(|s| s.seen).sum(),
        })
    }

    /// True when every round trip is among the samples.
    pub fn is_exact(&self) -> bool {
        self.kept == self.seen
    }
}

/// Nearest rank: the smallest value with at least `per_10k / 10_000` of the total weight at
/// or below it. With weights of 1 this is the textbook definition, `ceil(p * n)`-th value.
fn percentile(sorted: &[(u32, f32)], total: f64, per_10k: u32) -> u64 {
    let target = total * f64::from(per_10k) / 10_000.0;
    let mut below = 0.0;
    for &(value, weight) in sorted {
        below += f64::from(weight);
        if below >= target {
            return u64::from(value);
        }
    }
    // Rounding in a weighted sum can leave `below` a hair under `total`.
    sorted.last().map_or(0, |&(value, _)| u64::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(values: impl IntoIterator<Item = u64>, capacity: usize) -> Samples {
        let mut s = Samples::with_capacity(capacity, 7);
        for ns in values {
            s.record(Duration::from_nanos(ns));
        }
        s
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = samples((1..=100).rev(), 100);
        let l = Latency::merge([&s]).expect("samples");
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50, 90, 99, 100));
        assert!(l.is_exact());

        let s = samples([5, 1, 3, 2, 4, 7, 6], 10);
        let l = Latency::merge([&s]).expect("samples");
        assert_eq!((l.p50, l.p90, l.p99, l.max), (4, 7, 7, 7));
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let l = Latency::merge([&samples([42], 1)]).expect("samples");
        assert_eq!((l.p50, l.p90, l.p99, l.max, l.kept), (42, 42, 42, 42, 1));
    }

    #[test]
    fn no_samples_no_latency() {
        assert_eq!(Latency::merge([&samples([], 8), &samples([], 8)]), None);
        assert_eq!(Latency::merge([]), None);
    }

    #[test]
    fn clients_merge_as_one_distribution() {
        let a = samples(1..=50, 50);
        let b = samples(51..=100, 50);
        let empty = samples([], 50);
        let l = Latency::merge([&b, &empty, &a]).expect("samples");
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50, 90, 99, 100));
        assert_eq!((l.kept, l.seen), (100, 100));
    }

    #[test]
    fn a_full_store_samples_uniformly_and_keeps_the_exact_max() {
        let s = samples(0..100_000, 1000);
        assert_eq!(s.kept.len(), 1000);
        assert_eq!(s.seen(), 100_000);
        let l = Latency::merge([&s]).expect("samples");
        assert!(!l.is_exact());
        assert_eq!(l.max, 99_999);
        assert!((40_000..60_000).contains(&l.p50), "{l:?}");
        assert!((85_000..95_000).contains(&l.p90), "{l:?}");
    }

    #[test]
    fn sampled_clients_weigh_by_the_round_trips_they_stand_for() {
        // 1000 fast round trips kept as 10 samples, 10 slow ones kept whole: unweighted,
        // p90 would be slow; weighted, slow is only 1% of the round trips.
        let fast = samples(std::iter::repeat_n(10, 1000), 10);
        let slow = samples(std::iter::repeat_n(1000, 10), 10);
        let l = Latency::merge([&fast, &slow]).expect("samples");
        assert_eq!((l.p50, l.p90, l.p99, l.max), (10, 10, 10, 1000));
        assert_eq!((l.kept, l.seen), (20, 1010));
    }

    #[test]
    fn very_long_round_trips_saturate_but_max_is_exact() {
        let s = samples([5_000_000_000], 1);
        let l = Latency::merge([&s]).expect("samples");
        assert_eq!(l.p50, u64::from(u32::MAX));
        assert_eq!(l.max, 5_000_000_000);
    }

    #[test]
    fn the_budget_bounds_memory_but_never_below_a_floor() {
        assert_eq!(capacity_per_client(1, Some(1000)), 1000);
        assert_eq!(capacity_per_client(1, None), LATENCY_BUDGET);
        assert_eq!(capacity_per_client(4, Some(u64::MAX)), LATENCY_BUDGET / 4);
        assert_eq!(capacity_per_client(100_000, None), MIN_PER_CLIENT);
        assert_eq!(capacity_per_client(100_000, Some(3)), 3);
    }
}
