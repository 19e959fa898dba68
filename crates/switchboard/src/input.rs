//! What a line typed (or scripted) in `switchboard chat` means.
//!
//! * `#button <id>` / `#list <id>`: tap a reply button / pick a list row by id;
//! * `#clock <seconds>`: advance the manual clock and fire due timers (wait timeouts);
//! * `/vars`, `/events`, `/quit`: interactive commands;
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
    /// `/vars`, `/events`, `/quit` (interactive only; sent as text in scripts).
    Command(Command),
}

/// An interactive command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Print the execution's vars as JSON.
    Vars,
    /// Print the execution's events, one line each.
    Events,
    /// Leave.
    Quit,
}

/// Parses a line. `commands`: recognise `/vars`, `/events` and `/quit`.
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
            "/quit" | "/exit" => return Ok(Line::Command(Command::Quit)),
            _ => {}
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
    }
}
