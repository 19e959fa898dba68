//! `switchboard validate`: the same run, output and exit status as `cargo xtask validate`,
//! through the validator's file-system front end ([`switchboard_validator::fs`]): flow files,
//! directories, and Kapso projects (a project root, a workflow folder, or inside a project a
//! workflow's slug). `--config` adds the model map of `[llm] models` (`model-id-unmapped`).

use std::io::Write;
use std::path::PathBuf;

use switchboard_validator::Options;
use switchboard_validator::fs::{Format, read_registries, run};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// rustc-like diagnostics with source excerpts.
    Human,
    /// `{"files": [{"path", "diagnostics": [...]}]}`.
    Json,
}

/// Arguments of `switchboard validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: FormatArg,
    /// Known functions, flows, models and templates (JSON) for `unresolved-reference` and
    /// `call-cycle` (a Kapso project is its own registry).
    #[arg(long, value_name = "FILE")]
    pub registries: Option<PathBuf>,
    /// A `switchboard.toml`: the model ids its `[llm] models` maps are not `model-id-unmapped`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Flow files, directories (searched recursively for .json, .yaml and .yml, leaving out
    /// node_modules/ and dot-folders), Kapso projects or their workflows (inside a project, a
    /// workflow's slug will do).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Validates; returns the exit status (0: no errors, 1: errors, 2: unreadable or not a flow).
pub fn main(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<u8> {
    let mut options = Options::default();
    if let Some(path) = &args.registries {
        options.registries = read_registries(path)?;
    }
    if let Some(path) = &args.config {
        options.model_ids = crate::config::Config::read(path)?
            .model_ids()
            .into_keys()
            .collect();
    }
    let format = match args.format {
        FormatArg::Human => Format::Human,
        FormatArg::Json => Format::Json,
    };
    let result = run(&args.paths, &options);
    let text = result.render(format);
    write!(out, "{text}")?;
    if !text.ends_with('\n') {
        writeln!(out)?;
    }
    for e in &result.errors {
        writeln!(err, "error: {e}")?;
    }
    Ok(u8::try_from(result.exit_code()).unwrap_or(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(format: FormatArg, path: &str) -> (u8, String, String) {
        let args = Args {
            format,
            registries: None,
            config: None,
            paths: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)],
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = main(&args, &mut out, &mut err).unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn exit_codes_follow_the_validator() {
        let (code, out, _) = check(FormatArg::Human, "../../fixtures/flows/valid/echo.yaml");
        assert_eq!(code, 0, "{out}");
        let (code, out, _) = check(
            FormatArg::Json,
            "../../fixtures/flows/invalid/button-count__four_buttons.json",
        );
        assert_eq!(code, 1);
        assert!(out.contains("\"rule\": \"button-count\""), "{out}");
        let (code, _, err) = check(FormatArg::Human, "../../fixtures/no-such-file.json");
        assert_eq!(code, 2);
        assert!(err.starts_with("error: cannot read"), "{err}");
    }
}
