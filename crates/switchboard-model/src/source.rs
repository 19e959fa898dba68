//! Source text and the mapping from byte offsets to line and column.

use crate::value::Pos;

/// A line and a column, both 1-based; the column counts Unicode scalar values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct LineCol {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
}

/// The text a flow was read from, with a line index.
#[derive(Clone, Debug)]
pub struct Source {
    text: String,
    line_starts: Vec<u32>,
}

impl Source {
    /// Indexes `text`.
    pub fn new(text: impl Into<String>) -> Source {
        let text = text.into();
        let mut line_starts = vec![0u32];
        line_starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX)),
        );
        Source { text, line_starts }
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Line and column of a position (`None` for [`Pos::NONE`] or past the end).
    pub fn line_col(&self, pos: Pos) -> Option<LineCol> {
        let off = pos.offset()?;
        if off > self.text.len() {
            return None;
        }
        let line = self.line_starts.partition_point(|&s| s as usize <= off) - 1;
        let start = self.line_starts[line] as usize;
        let prefix = self
            .text
            .get(start..off)
            .map_or(off - start, |s| s.chars().count());
        Some(LineCol {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(prefix + 1).unwrap_or(u32::MAX),
        })
    }

    /// The text of 1-based line `line`, without its line break.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        let i = (line as usize).checked_sub(1)?;
        let start = *self.line_starts.get(i)? as usize;
        let end = self
            .line_starts
            .get(i + 1)
            .map_or(self.text.len(), |&e| e as usize);
        let s = self.text.get(start..end)?;
        Some(s.trim_end_matches(['\n', '\r']))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_offsets_to_lines_and_char_columns() {
        let s = Source::new("ab\néé x\n\nz");
        assert_eq!(
            s.line_col(Pos::new(0)),
            Some(LineCol { line: 1, column: 1 })
        );
        assert_eq!(
            s.line_col(Pos::new(3)),
            Some(LineCol { line: 2, column: 1 })
        );
        // 'x' is after two 2-byte characters and a space: byte 8, character column 4.
        assert_eq!(
            s.line_col(Pos::new(8)),
            Some(LineCol { line: 2, column: 4 })
        );
        assert_eq!(s.line_text(2), Some("éé x"));
        assert_eq!(s.line_text(3), Some(""));
        assert_eq!(s.line_text(4), Some("z"));
        assert_eq!(s.line_col(Pos::NONE), None);
        assert_eq!(s.line_col(Pos::new(100)), None);
    }
}
