//! `switchboard graph`: a flow (or every workflow of a project) as a Mermaid, DOT or SVG
//! diagram, drawn by `switchboard-graph`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use switchboard_graph::{Direction, Format, Options};

use crate::workflows::{Workflow, workflows};

/// Arguments of `switchboard graph`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A flow file, a directory of flow files, or a Kapso project (workflows/*/definition.json).
    #[arg(value_name = "FLOW|PROJECT")]
    pub path: PathBuf,
    /// The output format.
    #[arg(long, value_enum, default_value = "svg")]
    pub format: FormatArg,
    /// Where to write: a file (one flow), or a directory (a project: one `<name>.<ext>` per
    /// workflow, `call` nodes linking to each other). Default: stdout.
    #[arg(long, value_name = "FILE|DIR")]
    pub out: Option<PathBuf>,
    /// Which way the layers run.
    #[arg(long, value_enum, default_value = "lr")]
    pub direction: DirectionArg,
    /// In a project, draw only this workflow.
    #[arg(long, value_name = "NAME")]
    pub workflow: Option<String>,
}

/// `--format`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FormatArg {
    /// Mermaid flowchart text.
    Mermaid,
    /// Graphviz DOT text.
    Dot,
    /// A standalone SVG, laid out by Switchboard.
    Svg,
}

/// `--direction`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DirectionArg {
    /// Left to right.
    Lr,
    /// Top down.
    Td,
}

impl FormatArg {
    fn format(self) -> Format {
        match self {
            FormatArg::Mermaid => Format::Mermaid,
            FormatArg::Dot => Format::Dot,
            FormatArg::Svg => Format::Svg,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            FormatArg::Mermaid => "mmd",
            FormatArg::Dot => "dot",
            FormatArg::Svg => "svg",
        }
    }
}

/// Draws one workflow; its diagnostics counts go to `err`.
pub fn draw(
    w: &Workflow,
    format: Format,
    options: &Options,
    err: &mut dyn Write,
) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(&w.path).with_context(|| format!("cannot read {}", w.path.display()))?;
    let graph = switchboard_graph::from_bytes(
        &w.path.display().to_string(),
        &bytes,
        &switchboard_validator::Options::default(),
    )
    .with_context(|| format!("{}", w.path.display()))?;
    let (errors, warnings) = graph.counts;
    if errors + warnings > 0 {
        writeln!(
            err,
            "{}: {errors} error(s), {warnings} warning(s) (shown on the diagram; `switchboard validate` explains them)",
            w.path.display()
        )?;
    }
    Ok(switchboard_graph::render(&graph, format, options))
}

/// Links from each workflow name to `<name>.<ext>` (a project's diagrams, side by side).
pub fn links(all: &[Workflow], ext: &str) -> Options {
    let mut options = Options::default();
    for w in all {
        options
            .links
            .insert(w.name.clone(), format!("{}.{ext}", w.name));
    }
    options
}

/// Runs `switchboard graph`; returns the exit status.
pub fn main(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let all = workflows(&args.path)?;
    let format = args.format.format();
    let direction = match args.direction {
        DirectionArg::Lr => Direction::LeftRight,
        DirectionArg::Td => Direction::TopDown,
    };
    let project = args.path.is_dir();
    let mut options = if project {
        links(&all, args.format.extension())
    } else {
        Options::default()
    };
    options.direction = direction;
    let chosen: Vec<&Workflow> = match &args.workflow {
        Some(name) => match all.iter().find(|w| &w.name == name) {
            Some(w) => vec![w],
            None => bail!(
                "no workflow `{name}` in {} (workflows: {})",
                args.path.display(),
                all.iter()
                    .map(|w| w.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => all.iter().collect(),
    };
    match (&args.out, chosen.as_slice()) {
        (None, [one]) => {
            out.write_all(draw(one, format, &options, err)?.as_bytes())?;
        }
        (None, _) => bail!(
            "{} holds {} workflows: give --out DIR (one file each) or --workflow NAME",
            args.path.display(),
            chosen.len()
        ),
        (Some(file), [one]) if !project || !file.is_dir() => {
            write_file(file, &draw(one, format, &options, err)?)?;
        }
        (Some(dir), many) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for w in many {
                let file = dir.join(format!("{}.{}", w.name, args.format.extension()));
                write_file(&file, &draw(w, format, &options, err)?)?;
                writeln!(out, "{}", file.display())?;
            }
        }
    }
    Ok(0)
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
