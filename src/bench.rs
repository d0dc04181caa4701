//! `sockdemo bench`: not written yet.

use crate::cli::BenchArgs;

pub fn run(_args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench is not implemented yet")
}
