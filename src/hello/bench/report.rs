//! What a bench prints: the figures, as a text summary for people and as one JSON object
//! for scripts. No sockets here. serde_json writes the JSON: its escaping and its numbers
//! (a figure that is not finite becomes `null`) are right by construction.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::latency::Latency;

/// How much work each client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounds {
    /// This many round trips.
    Count(u64),
    /// As many round trips as fit in this long.
    For(Duration),
}

/// Everything a bench measured, ready to print.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The server, as `host:port`.
    pub target: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Round trips per client, or the run's length.
    pub rounds: Rounds,
    /// A connection per round trip.
    pub reconnect: bool,
    /// Connections opened and greeted.
    pub connections: u64,
    /// Round trips whose reply was right.
    pub messages: u64,
    /// Clients that failed (wrong reply, close, timeout, failed connect).
    pub errors: u64,
    /// Opening the connections, before timing starts (without `--reconnect` only; with it,
    /// `null` in JSON).
    pub setup: Duration,
    /// From the start signal to the last client's end.
    pub elapsed: Duration,
    /// Round-trip latency, when there was a round trip.
    pub latency: Option<Latency>,
    /// The terminating signal that stopped the run early, if one did: the figures are
    /// those of the run until then.
    pub interrupted: Option<i32>,
}

/// The JSON object, field by field, in the order it is written.
#[derive(Serialize)]
struct Json<'a> {
    target: &'a str,
    mode: &'static str,
    clients: usize,
    messages_per_client: Option<u64>,
    duration_s: Option<f64>,
    connections: u64,
    messages: u64,
    errors: u64,
    setup_s: Option<f64>,
    elapsed_s: f64,
    messages_per_s: Option<f64>,
    connections_per_s: Option<f64>,
    latency_us: Option<LatencyUs>,
    latency_samples: u64,
    latency_exact: bool,
    interrupted: bool,
}

/// Latency percentiles in microseconds.
#[derive(Serialize)]
struct LatencyUs {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Summary {
    /// Round trips per second of `elapsed`.
    pub fn messages_per_s(&self) -> Option<f64> {
        rate(self.messages, self.elapsed)
    }

    /// With `--reconnect`, connections opened per second of the bench; otherwise, per
    /// second of the set-up, when they were all opened.
    pub fn connections_per_s(&self) -> Option<f64> {
        if self.reconnect {
            rate(self.connections, self.elapsed)
        } else {
            rate(self.connections, self.setup)
        }
    }

    /// The summary for people, one figure per line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let each = match self.rounds {
            Rounds::Count(n) => format!("{n} round trips each"),
            Rounds::For(d) => format!("for {} each", human(d.as_nanos())),
        };
        let how = if self.reconnect {
            "a new connection per round trip"
        } else {
            "one connection each"
        };
        let clients = plural(self.clients as u64, "client");
        if let Some(signal) = self.interrupted {
            let _ = writeln!(
                out,
                "interrupted    by {}: the figures cover the run until then",
                crate::signals::name(signal)
            );
        }
        let _ = writeln!(
            out,
            "target         {} ({clients}, {each}, {how})",
            self.target
        );
        let _ = if self.reconnect {
            writeln!(out, "connections    {}", self.connections)
        } else {
            writeln!(
                out,
                "connections    {} (opened in {}, before timing starts)",
                self.connections,
                human(self.setup.as_nanos())
            )
        };
        let _ = writeln!(out, "messages       {}", self.messages);
        let _ = writeln!(out, "errors         {}", self.errors);
        let covers = if self.reconnect {
            "from the start to the last client's exit"
        } else {
            "from every client connected to the last client's exit"
        };
        let _ = writeln!(
            out,
            "elapsed        {} ({covers})",
            human(self.elapsed.as_nanos())
        );
        let _ = writeln!(out, "messages/s     {}", per_second(self.messages_per_s()));
        let _ = writeln!(
            out,
            "connections/s  {}",
            per_second(self.connections_per_s())
        );
        let _ = writeln!(out, "latency        {}", self.latency_text());
        out
    }

    fn latency_text(&self) -> String {
        let Some(l) = self.latency else {
            return "n/a (no round trip completed)".to_string();
        };
        let covers = if self.reconnect {
            "connect to whole reply"
        } else {
            "send to whole reply"
        };
        let over = if l.is_exact() {
            plural(l.seen, "round trip")
        } else {
            format!("a sample of {} of {} round trips", l.kept, l.seen)
        };
        format!(
            "p50 {}  p90 {}  p99 {}  max {} ({covers}, {over})",
            human(l.p50.into()),
            human(l.p90.into()),
            human(l.p99.into()),
            human(l.max.into()),
        )
    }

    /// One JSON object on one line: the same figures, in seconds and microseconds.
    pub fn json(&self) -> String {
        let (per_client, duration) = match self.rounds {
            Rounds::Count(n) => (Some(n), None),
            Rounds::For(d) => (None, Some(round(d.as_secs_f64(), 6))),
        };
        let us = |ns: u64| round(ns as f64 / 1000.0, 3);
        let json = Json {
            target: &self.target,
            mode: if self.reconnect {
                "reconnect"
            } else {
                "persistent"
            },
            clients: self.clients,
            messages_per_client: per_client,
            duration_s: duration,
            connections: self.connections,
            messages: self.messages,
            errors: self.errors,
            setup_s: (!self.reconnect).then(|| round(self.setup.as_secs_f64(), 6)),
            elapsed_s: round(self.elapsed.as_secs_f64(), 6),
            messages_per_s: self.messages_per_s().map(|r| round(r, 1)),
            connections_per_s: self.connections_per_s().map(|r| round(r, 1)),
            latency_us: self.latency.map(|l| LatencyUs {
                p50: us(l.p50),
                p90: us(l.p90),
                p99: us(l.p99),
                max: us(l.max),
            }),
            latency_samples: self.latency.map_or(0, |l| l.kept),
            latency_exact: self.latency.is_none_or(|l| l.is_exact()),
            interrupted: self.interrupted.is_some(),
        };
        // A struct of numbers, strings and options cannot fail to serialize.
        serde_json::to_string(&json).unwrap_or_default()
    }
}

fn rate(count: u64, over: Duration) -> Option<f64> {
    let seconds = over.as_secs_f64();
    (seconds > 0.0).then(|| count as f64 / seconds)
}

fn per_second(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".to_string(), |r| format!("{r:.0}"))
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `value` rounded to `decimals` places, so that the JSON carries no false precision
/// (a value that is not finite stays so, and serializes as `null`).
fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A duration for people, in the unit that suits it, about three significant digits:
/// `850 ns`, `35.2 µs`, `1.21 ms`, `2.50 s`.
pub fn human(ns: u128) -> String {
    let (value, unit) = match ns {
        0..=999 => return format!("{ns} ns"),
        1_000..=999_999 => (ns as f64 / 1e3, "µs"),
        1_000_000..=999_999_999 => (ns as f64 / 1e6, "ms"),
        _ => (ns as f64 / 1e9, "s"),
    };
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            target: "127.0.0.1:9999".to_string(),
            clients: 10,
            rounds: Rounds::Count(1000),
            reconnect: false,
            connections: 10,
            messages: 10_000,
            errors: 0,
            setup: Duration::from_millis(2),
            elapsed: Duration::from_millis(500),
            latency: Some(Latency {
                p50: 35_200,
                p90: 52_000,
                p99: 120_000,
                max: 1_210_000,
                kept: 10_000,
                seen: 10_000,
            }),
            interrupted: None,
        }
    }

    #[test]
    fn durations_read_in_a_fitting_unit() {
        let cases: &[(u128, &str)] = &[
            (0, "0 ns"),
            (999, "999 ns"),
            (1_000, "1.00 µs"),
            (35_249, "35.2 µs"),
            (120_000, "120 µs"),
            (999_999, "1000 µs"),
            (1_210_000, "1.21 ms"),
            (412_300_000, "412 ms"),
            (2_500_000_000, "2.50 s"),
            (75_000_000_000, "75.0 s"),
        ];
        for &(ns, want) in cases {
            assert_eq!(human(ns), want, "{ns}");
        }
    }

    #[test]
    fn text_has_every_figure_with_its_unit() {
        let text = summary().text();
        let want = "\
target         127.0.0.1:9999 (10 clients, 1000 round trips each, one connection each)
connections    10 (opened in 2.00 ms, before timing starts)
messages       10000
errors         0
elapsed        500 ms (from every client connected to the last client's exit)
messages/s     20000
connections/s  5000
latency        p50 35.2 µs  p90 52.0 µs  p99 120 µs  max 1.21 ms (send to whole reply, 10000 round trips)
";
        assert_eq!(text, want);
    }

    #[test]
    fn text_for_reconnect_and_duration_says_what_it_measured() {
        let mut s = summary();
        s.reconnect = true;
        s.rounds = Rounds::For(Duration::from_secs(1));
        s.connections = 10_000;
        s.latency = s.latency.map(|l| Latency { kept: 10, ..l });
        assert!(s.json().contains("\"mode\":\"reconnect\""));
        assert!(s.json().contains("\"setup_s\":null"));
        let text = s.text();
        assert!(text.contains("(10 clients, for 1.00 s each, a new connection per round trip)"));
        assert!(text.contains("connections    10000\n"), "{text}");
        assert!(text.contains("connections/s  20000\n"), "{text}");
        assert!(text.contains("connect to whole reply, a sample of 10 of 10000 round trips"));
    }

    #[test]
    fn json_is_one_flat_object_of_the_same_figures() {
        let want = "{\"target\":\"127.0.0.1:9999\",\"mode\":\"persistent\",\"clients\":10,\
            \"messages_per_client\":1000,\"duration_s\":null,\"connections\":10,\
            \"messages\":10000,\"errors\":0,\"setup_s\":0.002,\"elapsed_s\":0.5,\
            \"messages_per_s\":20000.0,\"connections_per_s\":5000.0,\
            \"latency_us\":{\"p50\":35.2,\"p90\":52.0,\"p99\":120.0,\"max\":1210.0},\
            \"latency_samples\":10000,\"latency_exact\":true,\"interrupted\":false}";
        assert_eq!(summary().json(), want);
    }

    #[test]
    fn nothing_measured_is_null_not_nan() {
        let mut s = summary();
        s.rounds = Rounds::For(Duration::from_millis(250));
        s.connections = 0;
        s.messages = 0;
        s.errors = 10;
        s.setup = Duration::ZERO;
        s.elapsed = Duration::ZERO;
        s.latency = None;
        let json = s.json();
        assert!(json.contains("\"setup_s\":0.0"), "{json}");
        assert!(json.contains("\"messages_per_client\":null,\"duration_s\":0.25"));
        assert!(json.contains("\"messages_per_s\":null,\"connections_per_s\":null"));
        assert!(json.contains("\"latency_us\":null"));
        assert!(!json.contains("NaN") && !json.contains("inf"));
        let text = s.text();
        assert!(text.contains("messages/s     n/a\n"), "{text}");
        assert!(text.contains("latency        n/a"), "{text}");
    }

    #[test]
    fn json_strings_are_escaped() {
        let cases = [
            ("a\"b", r#""a\"b""#),
            ("a\\b", r#""a\\b""#),
            ("\n", r#""\n""#),
            ("\u{1}", r#""\u0001""#),
            ("[::1]:80", r#""[::1]:80""#),
        ];
        for (text, want) in cases {
            let mut s = summary();
            s.target = text.to_string();
            let json = s.json();
            assert!(json.starts_with(&format!("{{\"target\":{want},")), "{json}");
        }
    }

    #[test]
    fn an_interrupted_run_says_so_in_both_forms() {
        let mut s = summary();
        s.interrupted = Some(2);
        assert!(s.json().ends_with(",\"interrupted\":true}"));
        let text = s.text();
        assert!(
            text.starts_with("interrupted    by SIGINT: the figures cover the run until then\n"),
            "{text}"
        );
    }
}
