//! What a line typed (or scripted) in `switchboard chat` means.
//!
//! * `#button <id>` / `#list <id>`: tap a reply button / pick a list row by id;
//! * `#clock <seconds>`: advance the manual clock and fire due timers (wait timeouts);
//! * `/vars`, `/events`, `/resume`, `/restart`, `/help`, `/quit`: interactive commands (an
//!   unknown `/word` is an error there, not a message);
//! * a blank line: nothing; anything else: a text message from the user.

/// One parsed line.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// Nothing to do.
    Blank,
    /// A text message.
    Text(String),
    /// `#button <id>`.
    Button(String),
    /// `#list <id>`.
    List(String),
    /// `#clock <seconds>`.
    Clock(f64),
    /// `/vars`, `/events`, `/resume`, `/restart`, `/help`, `/quit` (interactive only; sent as
    /// text in scripts).
    Command(Command),
}

/// An interactive command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print the execution's vars as JSON.
    Vars,
    /// Print the execution's events, one line each.
    Events,
    /// Hand a handed-off execution back to the flow (operator resume).
    Resume,
    /// End the current execution: the next message starts a new one.
    Restart,
    /// Print the commands and directives.
    Help,
    /// Leave.
    Quit,
}

/// The commands and directives, one line, for the prompt's banner and `/help`.
pub const HELP: &str = "a number taps a choice; #button ID, #list ID, #clock SECONDS; \
/vars, /events, /resume, /restart, /help, /quit";

/// Parses a line. `commands`: recognise the interactive commands; then any other `/word` is an
/// error (`/` followed by letters only: `/ 2` or `/2` are text).
///
/// A `#` followed by a lowercase word is a directive: an unknown one is an error, so a typo in a
/// script does not quietly become a user message. `#1` or `# hello` are text.
pub fn parse(line: &str, commands: bool) -> Result<Line, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Ok(Line::Blank);
    }
    if commands {
        match trimmed {
            "/vars" => return Ok(Line::Command(Command::Vars)),
            "/events" => return Ok(Line::Command(Command::Events)),
            "/resume" => return Ok(Line::Command(Command::Resume)),
            "/restart" => return Ok(Line::Command(Command::Restart)),
            "/help" | "/?" => return Ok(Line::Command(Command::Help)),
            "/quit" | "/exit" => return Ok(Line::Command(Command::Quit)),
            _ => {}
        }
        if let Some(word) = trimmed.strip_prefix('/')
            && !word.is_empty()
            && word.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(format!(
                "unknown command `/{word}` (known: /vars, /events, /resume, /restart, /help, /quit)"
            ));
        }
    }
    if let Some(rest) = trimmed.strip_prefix('#') {
        let (word, arg) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let arg = arg.trim();
        if !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()) {
            return match word {
                "button" | "list" if arg.is_empty() => Err(format!("`#{word}` needs an id")),
                "button" => Ok(Line::Button(arg.to_owned())),
                "list" => Ok(Line::List(arg.to_owned())),
                "clock" => match arg.parse::<f64>() {
                    Ok(s) if s.is_finite() && s >= 0.0 => Ok(Line::Clock(s)),
                    _ => Err(format!("`#clock` takes a number of seconds, not `{arg}`")),
                },
                other => Err(format!(
                    "unknown directive `#{other}` (known: #button ID, #list ID, #clock SECONDS)"
                )),
            };
        }
    }
    Ok(Line::Text(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_blank() {
        assert_eq!(
            parse("  hi there \n", false),
            Ok(Line::Text("hi there".into()))
        );
        assert_eq!(parse(" \r\n", false), Ok(Line::Blank));
        assert_eq!(parse("#1", false), Ok(Line::Text("#1".into())));
        assert_eq!(parse("# hello", false), Ok(Line::Text("# hello".into())));
    }

    #[test]
    fn directives() {
        assert_eq!(
            parse("#button sales", false),
            Ok(Line::Button("sales".into()))
        );
        assert_eq!(parse("#list row_2 ", false), Ok(Line::List("row_2".into())));
        assert_eq!(parse("#clock 3600", false), Ok(Line::Clock(3600.0)));
        assert_eq!(parse("#clock 1.5", false), Ok(Line::Clock(1.5)));
        assert!(parse("#clock soon", false).is_err());
        assert!(parse("#clock -1", false).is_err());
        assert!(parse("#button", false).is_err());
        assert!(parse("#buton sales", false).is_err());
    }

    #[test]
    fn commands_only_when_asked() {
        assert_eq!(parse("/vars", true), Ok(Line::Command(Command::Vars)));
        assert_eq!(parse("/events", true), Ok(Line::Command(Command::Events)));
        assert_eq!(parse("/quit", true), Ok(Line::Command(Command::Quit)));
        assert_eq!(parse("/vars", false), Ok(Line::Text("/vars".into())));
        assert_eq!(parse("/resume", true), Ok(Line::Command(Command::Resume)));
        assert_eq!(parse("/restart", true), Ok(Line::Command(Command::Restart)));
        assert_eq!(parse("/help", true), Ok(Line::Command(Command::Help)));
    }

    #[test]
    fn unknown_commands_are_errors_only_at_the_prompt() {
        let e = parse("/varz", true).unwrap_err();
        assert!(e.contains("unknown command `/varz`"), "{e}");
        assert_eq!(parse("/varz", false), Ok(Line::Text("/varz".into())));
        assert_eq!(parse("/2", true), Ok(Line::Text("/2".into())));
        assert_eq!(parse("a/b", true), Ok(Line::Text("a/b".into())));
    }
}
