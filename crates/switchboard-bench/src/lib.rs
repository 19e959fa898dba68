//! Benchmark and load-test support for Switchboard: the harness that drives a spawned
//! `switchboard serve` over loopback the way WhatsApp does ([`harness`]), shared by the CLI's
//! durability tests and `cargo xtask bench serve` ([`serve`]), and the startup benchmark ([`startup`]). A test and tool kit: it must not be a normal
//! dependency of a library crate, and it talks only to servers it starts on 127.0.0.1.

pub mod harness;
pub mod serve;
pub mod startup;
