//! `cargo xtask`: project automation (validate flow files, run benchmarks).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("no task given")
}
