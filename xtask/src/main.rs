//! `cargo xtask`: project automation (validate flow files, run benchmarks).

// wired into `cargo xtask bench` next
#[allow(dead_code)]
mod flowgen;

fn main() -> anyhow::Result<()> {
    anyhow::bail!("no task given")
}
