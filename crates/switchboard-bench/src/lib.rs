//! Benchmark and load-test support for Switchboard: the harness that drives a spawned
//! `switchboard serve` over loopback the way WhatsApp does ([`harness`]), shared by the CLI's
//! durability tests and `cargo xtask bench serve` ([`serve`]), and the startup benchmark ([`startup`]). A test and tool kit: it must not be a normal
//! dependency of a library crate, and it talks only to servers it starts on 127.0.0.1.

/// `println!` for the benchmarks' reports: when standard output is closed (`… | head`), the
/// process ends quietly instead of panicking on the broken pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*)
            && e.kind() == std::io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }};
}

pub mod harness;
pub mod serve;
pub mod startup;
