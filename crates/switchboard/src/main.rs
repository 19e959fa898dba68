//! `switchboard`: the command line of the Switchboard flow engine.
//!
//! # The crates
//!
//! `cargo doc --open` lands here. The libraries, each usable alone:
//!
//! * [`switchboard_model`](../switchboard_model/index.html): flow files — lossless JSON/YAML
//!   loading and writing, typed node configs, a builder;
//! * [`switchboard_validator`](../switchboard_validator/index.html): every validation rule, with
//!   positions and help; human and JSON reports;
//! * [`switchboard_runtime`](../switchboard_runtime/index.html): the engine — executions, adapter
//!   traits, the inbox, the in-memory store, offline adapters;
//! * [`switchboard_script`](../switchboard_script/index.html): conversation scripts and their runner;
//! * [`switchboard_http`](../switchboard_http/index.html): webhook HTTP client, HTTP functions;
//! * [`switchboard_llm`](../switchboard_llm/index.html): OpenAI-compatible and Anthropic models, the
//!   model router;
//! * [`switchboard_whatsapp`](../switchboard_whatsapp/index.html): the WhatsApp Cloud API;
//! * [`switchboard_js`](../switchboard_js/index.html): local JavaScript functions (QuickJS);
//! * [`switchboard_mcp`](../switchboard_mcp/index.html): agent MCP tools;
//! * [`switchboard_sqlite`](../switchboard_sqlite/index.html) and
//!   [`switchboard_postgres`](../switchboard_postgres/index.html): durable execution stores;
//! * [`switchboard_project`](../switchboard_project/index.html): a pulled Kapso project on an
//!   engine (project mode of chat, test and serve);
//! * [`switchboard_server`](../switchboard_server/index.html): WhatsApp webhooks and the executions
//!   API (axum);
//! * [`switchboard_store_tests`](../switchboard_store_tests/index.html): the store conformance
//!   suite, and [`switchboard_bench`](../switchboard_bench/index.html): the runtime benchmark.
//!
//! # The command line
//!
//! * `switchboard validate [--format human|json] [--registries FILE] [--config FILE] PATH...`
//!   checks flow files and Kapso projects (as `cargo xtask validate`: exit 0 no errors, 1
//!   errors, 2 usage, I/O or not a flow);
//! * `switchboard chat FLOW|WORKFLOW [--script -|FILE] [--json] [--phone +E164] [--name NAME]
//!   [--config switchboard.toml]` talks to a flow or a Kapso project's workflow, interactively
//!   or from a script of user turns: offline by default (a project's own functions run
//!   locally), with real adapters where a configuration names them;
//! * `switchboard test [--print] [--config switchboard.toml] PATH...` runs conversation scripts
//!   and reports `ok`/`FAIL`;
//! * `switchboard serve PROJECT_DIR|--flows DIR [--listen ADDR]
//!   [--store memory|sqlite://PATH|postgres://…] [--config switchboard.toml] [--inbound FLOW]
//!   [--phone-number-id ID] [--offline] [--migrate]` serves WhatsApp webhooks and the executions
//!   API for a Kapso project (its workflow.yaml triggers) or a directory of flows;
//! * `switchboard graph FLOW|PROJECT [--format mermaid|dot|svg] [--out FILE|DIR]` draws a
//!   flow (`switchboard-graph`), and `switchboard playground [FLOW|PROJECT] [--listen ADDR]
//!   [--config FILE]` serves a page to look at a flow and talk to it;
//! * `switchboard migrate --store STORE` brings a store's schema up to date, and
//!   `switchboard prune --store STORE --older-than 30d` removes old ended executions.
//!
//! This crate is the edge of the system: it wires concrete adapters (the offline ones of
//! `switchboard_runtime::offline`, and those of the adapter crates — `switchboard-http`,
//! `-llm`, `-whatsapp`, `-js`, `-mcp`, `-sqlite`, `-server` — that a `switchboard.toml` or
//! the command line asks for) into the runtime, installs the redacting log subscriber,
//! owns the process (arguments, terminal, exit status), and is the only place besides `xtask`
//! that uses `anyhow` and `clap`. The logic lives in small modules with unit tests; `main`
//! only parses and dispatches.

mod chat;
mod config;
mod display;
mod graph;
mod input;
mod logging;
mod playground;
mod project;
mod scripts;
mod serve;
mod session;
mod store;
mod validate;
mod workflows;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Switchboard: run Kapso-compatible WhatsApp flows.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate flow files, directories and Kapso projects (exit 0: no errors, 1: errors, 2:
    /// unreadable).
    Validate(validate::Args),
    /// Chat with a flow or a Kapso project's workflow offline: interactively, or from a script.
    #[command(after_help = CHAT_HELP)]
    Chat(chat::Args),
    /// Run conversation scripts (files, or directories of *.yaml/*.yml).
    Test(scripts::Args),
    /// Serve WhatsApp webhooks and the executions API for a Kapso project or a directory of
    /// flows.
    #[command(after_help = SERVE_HELP)]
    Serve(serve::Args),
    /// Draw a flow as a diagram: Mermaid, Graphviz DOT, or an SVG laid out by Switchboard.
    #[command(after_help = GRAPH_HELP)]
    Graph(graph::Args),
    /// Serve a page to look at a flow and talk to it (diagram, chat, events, variables).
    #[command(after_help = PLAYGROUND_HELP)]
    Playground(playground::Args),
    /// Bring a store's schema up to date (PostgreSQL migrations; SQLite migrates when opened).
    Migrate(store::MigrateArgs),
    /// Remove executions (with their events and messages) that ended longer ago than an age.
    Prune(store::PruneArgs),
}

const SERVE_HELP: &str = "\
A Kapso project (PROJECT_DIR, holding kapso.yaml): every workflow is registered by slug (and Kapso
uuid) and can be started through the API; a message on a number starts the active workflow whose
active inbound_message trigger names it (draft and paused workflows are not started by messages);
the project's functions run locally, with its .env. A directory of flows (--flows DIR): every
flow file is registered under its file stem with an api_call trigger; --inbound FLOW (default: the
only flow, else the first by file name) also gets the inbound trigger on the business number
(--phone-number-id, else [whatsapp] phone_number_id).
Replies go to the WhatsApp Cloud API of [whatsapp] in --config (token from the variable it names,
default WHATSAPP_ACCESS_TOKEN); without [whatsapp], serve refuses to start unless --offline (replies
logged and dropped, offline fakes for families the configuration leaves out). Webhook signatures use
WHATSAPP_APP_SECRET and the handshake WHATSAPP_VERIFY_TOKEN (names changeable in [whatsapp]; unset:
refused). Webhooks are answered once their messages are in the store; the turns run afterwards.
The executions API is served only with an [api] section (bearer tokens). --store memory,
sqlite://PATH, postgres://… or env:NAME; with PostgreSQL, --migrate applies migrations first
(otherwise the schema must be current).
Routes: GET|POST /webhooks/whatsapp, POST|GET /v1/executions, GET /v1/executions/{id},
GET /v1/executions/{id}/messages, POST /v1/executions/{id}/resume|status|jump,
GET /v1/executions/{id}/events, GET /v1/events/{id}.
The listening address is printed on stdout; logs go to stderr (SWITCHBOARD_LOG, default info),
with every known secret redacted. Ctrl-C or SIGTERM stops gracefully.";

const GRAPH_HELP: &str = "\
The diagram shows every node (shape and colour by kind, id, a short summary), decide edges with
their conditions (a condition without an edge as a dotted stub), error edges dashed, handoffs as
dead ends, call nodes with the workflow they call (linked in a project), wait timeouts, and
unreachable nodes in grey. Nodes with diagnostics are outlined (red: error, orange: warning) and
their counts go to stderr. The SVG needs no other program: Switchboard lays it out itself.
Examples:
  switchboard graph fixtures/flows/valid/appointment_booking.json --out booking.svg
  switchboard graph flow.yaml --format mermaid
  switchboard graph my-project --format svg --out diagrams/";

const PLAYGROUND_HELP: &str = "\
Open the printed address in a browser: the diagram with the validator's diagnostics, a
WhatsApp-like chat, the node the conversation is at, and Events, Variables and Errors tabs.
Offline adapters by default (scripted fakes, a manual clock: \"advance the clock\" fires wait
timeouts); --config switchboard.toml uses its real models, functions, HTTP and MCP. Nothing is
ever sent to WhatsApp: the chat is the messenger. The file is watched: when it changes, the
diagram and diagnostics update and the page offers to replay the conversation or restart.
Binds 127.0.0.1:8787 by default (loopback only unless --listen says otherwise; port 0 picks a
free port). The address is printed on stdout. The page's JSON API is in docs/graph-and-playground.md.";

const CHAT_HELP: &str = "\
Lines (typed or scripted):
  <text>            a text message from the user
  #button <id>      tap a reply button (title from the last interactive message)
  #list <id>        pick a list row
  #clock <seconds>  let time pass on the manual clock and fire due wait timeouts
At a terminal also: a choice's number taps it; /vars, /events, /quit.
Status changes print as `-- waiting`, `-- ended (<reason>)`, `-- handoff`, `-- failed: <kind>: <message>`
(on stderr in script mode). A flow with error diagnostics is refused (exit 1).
FLOW may be a workflow of a Kapso project: its folder, or inside the project its slug; every workflow
is registered and the project's functions run locally (with its .env), no configuration needed.";

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        // `switchboard chat … | head`: the reader left, nothing more to say.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln_stderr(&format!("error: {e:#}"));
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Validate(args) => validate::main(
            &args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Chat(args) => {
            let terminal = std::io::stdin().is_terminal();
            runtime()?.block_on(chat::main(args, terminal))
        }
        Command::Test(args) => {
            runtime()?.block_on(scripts::main(&args, &mut std::io::stdout().lock()))
        }
        Command::Serve(args) => runtime()?.block_on(serve::main(
            args,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Graph(args) => graph::main(
            &args,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Playground(args) => runtime()?.block_on(playground::main(args)),
        Command::Migrate(args) => {
            runtime()?.block_on(store::migrate(&args, &mut std::io::stdout().lock()))
        }
        Command::Prune(args) => {
            runtime()?.block_on(store::prune(&args, &mut std::io::stdout().lock()))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn writeln_stderr(line: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(std::io::stderr(), "{line}")
}

/// mimalloc rather than the system allocator: a turn makes many small, short-lived
/// allocations, and glibc's malloc and free took about a third of a turn's instructions
/// (callgrind on `cargo xtask bench runtime`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
