//! `switchboard chat`: talk to a flow from the terminal, or feed it a script of user turns.
//!
//! Interactive mode (stdin is a terminal and no `--script`) prompts `you> `, numbers the
//! choices of interactive messages so typing the number taps them, and understands `/vars`,
//! `/events` and `/quit`. Script mode reads one user turn per line and prints what the bot
//! sends (or, with `--json`, one transcript document at the end). Both understand the
//! directives of [`crate::input`] (`#button ID`, `#list ID`, `#clock SECONDS`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use switchboard_model::Flow;
use switchboard_runtime::normalise_phone;
use switchboard_validator::{Options, check_file, render_human};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::display::{self, ChoiceLabel};
use crate::input::{self, Command, Line};
use crate::project::Target;
use crate::session::{Action, Outcome, Session, SessionOptions};

/// Arguments of `switchboard chat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The flow file (JSON or YAML, any shape), or a workflow of a Kapso project: its folder
    /// (`workflows/<slug>`), or — inside the project — its slug.
    #[arg(value_name = "FLOW|WORKFLOW")]
    pub flow: PathBuf,
    /// Read user turns from FILE (`-`: stdin), one per line, instead of prompting.
    #[arg(long, value_name = "-|FILE")]
    pub script: Option<String>,
    /// With a script: print the whole transcript as one JSON document at the end.
    #[arg(long)]
    pub json: bool,
    /// The contact's phone number (E.164).
    #[arg(long, value_name = "+E164", default_value = "+14155550100")]
    pub phone: String,
    /// The contact's WhatsApp profile name.
    #[arg(long)]
    pub name: Option<String>,
    /// A directory of `<function>.json` files: the answers of function nodes (by function id
    /// or slug). Functions without an answer fail with `not_found`.
    #[arg(long, value_name = "DIR")]
    pub functions: Option<PathBuf>,
    /// A `switchboard.toml`: use real adapters — the language models of `[llm]`, HTTP for
    /// webhook nodes, MCP, the functions of `[functions]`. Messages stay in the terminal.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// How the turns are read and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A person at a terminal.
    Interactive,
    /// Lines from a script: bot lines on stdout, status lines on stderr.
    Script,
    /// Lines from a script: one JSON transcript on stdout at the end (status lines on stderr).
    Json,
}

/// Loads a flow for chatting: `Ok(Err(report))` when it has error diagnostics (the rendered
/// report), an error when the file cannot be read.
pub fn load_flow(path: &Path) -> anyhow::Result<Result<Flow, String>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let report = check_file(&name, &bytes, &Options::default());
    if report.has_errors() {
        return Ok(Err(render_human(&report)));
    }
    let loaded = switchboard_model::load_bytes(&bytes, Some(&name), &Default::default())
        .with_context(|| format!("cannot load {name}"))?;
    Ok(Ok(loaded.flow))
}

/// Prints a refused flow's report and says why; exit status 1.
fn refuse(report: &str, what: &str) -> anyhow::Result<u8> {
    let mut err = std::io::stderr().lock();
    write!(err, "{report}")?;
    writeln!(
        err,
        "error: {what} has error diagnostics: refusing to run it"
    )?;
    Ok(1)
}

/// Runs `switchboard chat`; returns the exit status.
pub async fn main(args: Args, stdin_is_terminal: bool) -> anyhow::Result<u8> {
    let mode = match (&args.script, args.json) {
        (None, true) if stdin_is_terminal => {
            bail!("--json needs a non-interactive run: give --script - or --script FILE")
        }
        (None, false) if stdin_is_terminal => Mode::Interactive,
        (_, true) => Mode::Json,
        (_, false) => Mode::Script,
    };
    let phone = normalise_phone(&args.phone)
        .with_context(|| format!("--phone `{}` is not an E.164 number", args.phone))?;
    let config = match &args.config {
        Some(path) => Some(Arc::new(crate::config::Config::read(path)?)),
        None => None,
    };
    let mut secrets = config
        .as_ref()
        .map(|c| c.secret_variables())
        .unwrap_or_default();
    let options = SessionOptions {
        phone: phone.clone(),
        name: args.name.clone(),
        functions: args.functions.clone(),
        config: config.clone(),
        others: Vec::new(),
    };
    let (mut session, secret_values) = match crate::project::target(&args.flow)? {
        Target::Flow(path) => {
            let flow = match load_flow(&path)? {
                Ok(flow) => flow,
                Err(report) => return refuse(&report, &path.display().to_string()),
            };
            secrets.extend(crate::logging::env_references(
                &std::fs::read_to_string(&path).unwrap_or_default(),
            ));
            let session = Session::new(&crate::session::flow_id(&path), flow, options)?;
            (session, Vec::new())
        }
        Target::Project(root, folder) => {
            let validate = crate::project::options(config.as_deref());
            let (project, _) = crate::project::open(&root, None, &validate)?;
            let Some(workflow) = folder.as_deref().and_then(|f| project.workflow(f)) else {
                bail!(
                    "{} is a Kapso project: name one of its workflows (inside the project, its slug will do): {}",
                    crate::project::shown(&root),
                    crate::project::slugs(&project)
                );
            };
            let selection = std::iter::once(workflow.folder.clone()).collect();
            if let Some(report) =
                crate::project::errors(&project.check(Some(&selection), &validate))
            {
                return refuse(&report, &format!("workflow `{}`", workflow.slug));
            }
            for w in &project.workflows {
                if let Some(bytes) = &w.definition {
                    secrets.extend(crate::logging::env_references(&String::from_utf8_lossy(
                        bytes,
                    )));
                }
            }
            let slug = workflow.slug.clone();
            Session::with_project(&project, &slug, options)?
        }
    };
    // Off unless SWITCHBOARD_LOG asks: the transcript already shows failures.
    let redactor = crate::logging::Redactor::new(
        secrets
            .iter()
            .filter_map(|n| std::env::var(n).ok())
            .chain(secret_values),
    );
    crate::logging::init("off", redactor);
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr();
    match args.script.as_deref() {
        Some(file) if file != "-" => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
            run(&mut session, text.as_bytes(), mode, &mut out, &mut err).await
        }
        _ => {
            if mode == Mode::Interactive {
                writeln!(
                    out,
                    "Chatting with {} as {}. Type a message; {}.",
                    args.flow.display(),
                    phone,
                    input::HELP
                )?;
            }
            let reader = tokio::io::BufReader::new(tokio::io::stdin());
            run(&mut session, reader, mode, &mut out, &mut err).await
        }
    }
}

/// Reads turns until the input ends (or `/quit`), writing bot lines to `out` and, in script
/// mode, status lines to `status` (interactive mode writes everything to `out`).
pub async fn run<R: AsyncBufRead + Unpin>(
    session: &mut Session,
    input: R,
    mode: Mode,
    out: &mut dyn Write,
    status: &mut dyn Write,
) -> anyhow::Result<u8> {
    let mut lines = input.lines();
    let mut turns = Vec::new();
    let mut n = 0usize;
    loop {
        if mode == Mode::Interactive {
            write!(out, "you> ")?;
            out.flush()?;
        }
        let Some(text) = lines.next_line().await.context("cannot read input")? else {
            if mode == Mode::Interactive {
                writeln!(out)?;
            }
            break;
        };
        n += 1;
        let line = match input::parse(&text, mode == Mode::Interactive) {
            Ok(l) => l,
            Err(e) if mode == Mode::Interactive => {
                writeln!(out, "error: {e}")?;
                continue;
            }
            Err(e) => bail!("line {n}: {e}"),
        };
        let (action, record) = match line {
            Line::Blank => continue,
            Line::Command(Command::Quit) => break,
            Line::Command(Command::Vars) => {
                let x = session.execution().await?;
                let vars = x.map_or(Value::Null, |e| Value::Object(e.vars));
                writeln!(out, "{}", serde_json::to_string_pretty(&vars)?)?;
                continue;
            }
            Line::Command(Command::Events) => {
                for e in session.events().await? {
                    writeln!(out, "{}", crate::session::event_line(&e))?;
                }
                continue;
            }
            Line::Command(Command::Help) => {
                writeln!(out, "Type a message; {}.", input::HELP)?;
                continue;
            }
            Line::Command(c @ (Command::Resume | Command::Restart)) => {
                let done = if c == Command::Resume {
                    session.resume().await
                } else {
                    session.restart().await
                };
                match done {
                    Ok(outcome) => {
                        show(&outcome, ChoiceLabel::Number, out, None)?;
                        write_notes(&outcome, status)?;
                    }
                    Err(e) => writeln!(out, "error: {e:#}")?,
                }
                continue;
            }
            Line::Text(t) => {
                let numbered = match mode {
                    Mode::Interactive => t.parse::<usize>().ok(),
                    _ => None,
                };
                let count = session.choice_count();
                match numbered {
                    Some(k) if count > 0 && (k == 0 || k > count) => {
                        writeln!(
                            out,
                            "error: there is no choice {k}: the last message offers 1 to {count} (not sent)"
                        )?;
                        continue;
                    }
                    _ => {}
                }
                match numbered.and_then(|k| session.numbered_choice(k)) {
                    Some(r) => {
                        let rec = json!({"id": r.id, "title": r.title});
                        let key = reply_key(&r.kind);
                        (Action::Reply(r), (key, rec))
                    }
                    None => (Action::Text(t.clone()), ("user", json!(t))),
                }
            }
            Line::Button(ref id) | Line::List(ref id) => {
                let kind = if matches!(line, Line::List(_)) {
                    "list_reply"
                } else {
                    "button_reply"
                };
                let r = match session.checked_reply(kind, id) {
                    Ok(r) => r,
                    Err(e) if mode == Mode::Interactive => {
                        writeln!(out, "error: {e}")?;
                        continue;
                    }
                    Err(e) => bail!("line {n}: {e}"),
                };
                let rec = json!({"id": r.id, "title": r.title});
                (Action::Reply(r), (reply_key(kind), rec))
            }
            Line::Clock(s) => (Action::Clock(s), ("clock", json!(s))),
        };
        let outcome = match session.act(action).await {
            Ok(o) => o,
            Err(e) if mode == Mode::Interactive => {
                writeln!(out, "error: {e:#}")?;
                continue;
            }
            Err(e) => return Err(e.context(format!("line {n}"))),
        };
        match mode {
            Mode::Interactive => {
                show(&outcome, ChoiceLabel::Number, out, None)?;
                write_notes(&outcome, status)?;
                if let Some(hint) = hint(&outcome) {
                    writeln!(out, "{hint}")?;
                }
            }
            Mode::Script => {
                show(&outcome, ChoiceLabel::Id, out, Some(&mut *status))?;
                write_notes(&outcome, status)?;
            }
            Mode::Json => {
                for line in &outcome.status {
                    writeln!(status, "{line}")?;
                }
                write_notes(&outcome, status)?;
                let mut turn = Map::new();
                turn.insert(record.0.into(), record.1);
                turn.insert(
                    "outbound".into(),
                    outcome.outbound.iter().map(display::payload).collect(),
                );
                let st = session.execution().await?.map(|e| e.status.as_str());
                turn.insert("status".into(), json!(st));
                turns.push(Value::Object(turn));
            }
        }
    }
    if mode == Mode::Json {
        let doc = json!({
            "turns": turns,
            "execution": session.execution_json().await?,
            "events": session.all_events().await?,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    }
    out.flush()?;
    Ok(0)
}

/// What can be done next, after a turn that left the execution handed off or failed (at the
/// prompt only: scripts keep their output to the bot's lines and status lines).
fn hint(outcome: &Outcome) -> Option<&'static str> {
    let last = outcome.status.last()?;
    if last == "-- handoff" || last.starts_with("-- ignored") {
        Some(
            "-- a human has the conversation now, so the flow will not answer: \
             /resume hands it back to the flow, /restart starts over, /quit leaves",
        )
    } else if last.starts_with("-- failed") {
        Some("-- your next message starts a new execution (or type /restart first)")
    } else {
        None
    }
}

/// Writes a turn's `-- note:` lines (to stderr in every mode).
fn write_notes(outcome: &Outcome, w: &mut dyn Write) -> std::io::Result<()> {
    for n in &outcome.notes {
        writeln!(w, "{n}")?;
    }
    w.flush()
}

fn reply_key(kind: &str) -> &'static str {
    if kind == "list_reply" {
        "list"
    } else {
        "button"
    }
}

/// Prints a turn's messages to `out` and its status lines to `status` (or `out`).
fn show<'a>(
    outcome: &Outcome,
    label: ChoiceLabel,
    out: &'a mut dyn Write,
    status: Option<&'a mut dyn Write>,
) -> std::io::Result<()> {
    for m in &outcome.outbound {
        write!(out, "{}", display::render(&m.body, label))?;
    }
    out.flush()?;
    let w: &mut dyn Write = match status {
        Some(w) => w,
        None => out,
    };
    for s in &outcome.status {
        writeln!(w, "{s}")?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/flows")
            .join(name)
    }

    /// One `check` helper: runs `lines` against a fixture flow in `mode`, returns (stdout,
    /// status output).
    async fn check(flow: &str, mode: Mode, lines: &str) -> (String, String) {
        let path = fixture(flow);
        let flow = load_flow(&path).unwrap().unwrap();
        let mut session = Session::new(
            &crate::session::flow_id(&path),
            flow,
            SessionOptions {
                name: Some("Ana".into()),
                ..SessionOptions::default()
            },
        )
        .unwrap();
        let (mut out, mut status) = (Vec::new(), Vec::new());
        let code = run(&mut session, lines.as_bytes(), mode, &mut out, &mut status)
            .await
            .unwrap();
        assert_eq!(code, 0);
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(status).unwrap(),
        )
    }

    #[tokio::test]
    async fn script_mode_prints_bot_lines_and_status_separately() {
        let (out, status) = check("valid/echo.yaml", Mode::Script, "hi\n\nA-1234\n").await;
        assert_eq!(
            out,
            "bot: What is your order number?\nbot: Thanks, looking up A-1234.\n"
        );
        assert_eq!(status, "-- waiting\n-- ended (leaf)\n");
    }

    #[tokio::test]
    async fn interactive_numbers_choices_and_taps_them() {
        let (out, status) = check(
            "valid/support_triage.json",
            Mode::Interactive,
            "hello\n1\n/vars\n/quit\nnot read\n",
        )
        .await;
        assert!(status.is_empty());
        assert!(out.contains("bot: Hi Ana, how can we help?\n  [1] Sales\n  [2] Support\n"));
        // `1` tapped Sales: the decide node picked `sales` and handed off.
        assert!(out.contains("-- handoff"), "{out}");
        assert!(out.contains("\"last_user_reply\""), "{out}");
        assert!(!out.contains("not read"));
    }

    #[tokio::test]
    async fn script_buttons_by_id_with_titles() {
        let (out, _) = check(
            "valid/support_triage.json",
            Mode::Json,
            "hello\n#button support\n",
        )
        .await;
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["turns"][1]["button"],
            json!({"id": "support", "title": "Support"})
        );
        assert_eq!(v["turns"][0]["outbound"][0]["type"], "interactive");
        assert!(v["events"].as_array().is_some_and(|e| !e.is_empty()));
    }

    #[tokio::test]
    async fn bad_directive_in_a_script_is_an_error() {
        let path = fixture("valid/echo.yaml");
        let flow = load_flow(&path).unwrap().unwrap();
        let mut s = Session::new("echo", flow, SessionOptions::default()).unwrap();
        let (mut out, mut status) = (Vec::new(), Vec::new());
        let e = run(
            &mut s,
            &b"hi\n#clok 5\n"[..],
            Mode::Script,
            &mut out,
            &mut status,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn flows_with_errors_are_refused_with_the_report() {
        let report = load_flow(&fixture("invalid/button-count__four_buttons.json"))
            .unwrap()
            .unwrap_err();
        assert!(report.contains("error[button-count]"), "{report}");
    }
}
