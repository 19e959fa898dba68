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
    line_starts: std::sync::OnceLock<Vec<u32>>,
}

impl Source {
    /// Indexes `text`.
    pub fn new(text: impl Into<String>) -> Source {
        Source {
            text: text.into(),
            line_starts: std::sync::OnceLock::new(),
        }
    }

    /// The byte offsets where lines start (computed on first use).
    fn line_starts(&self) -> &[u32] {
        self.line_starts.get_or_init(|| {
            let mut starts = vec![0u32];
            starts.extend(
                memchr::memchr_iter(b'\n', self.text.as_bytes())
                    .map(|i| u32::try_from(i + 1).unwrap_or(u32::MAX)),
            );
            starts
        })
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
        let line = self.line_starts().partition_point(|&s| s as usize <= off) - 1;
        let start = self.line_starts()[line] as usize;
        let prefix = self.text.get(start..off).map_or(off - start, count_chars);
        Some(LineCol {
            line: u32::try_from(line + 1).unwrap_or(u32::MAX),
            column: u32::try_from(prefix + 1).unwrap_or(u32::MAX),
        })
    }

    /// Lines and columns of many positions at once, in one pass over the text: linear in the
    /// text size plus the number of positions, however long the lines are (a one-line 10 MB
    /// JSON file with thousands of diagnostics stays fast).
    pub fn line_cols(&self, positions: &[Pos]) -> Vec<Option<LineCol>> {
        let mut order: Vec<usize> = (0..positions.len()).collect();
        order.sort_by_key(|&i| positions[i].offset().unwrap_or(usize::MAX));
        let mut out = vec![None; positions.len()];
        // Cursor: byte offset, its line index and its character column (0-based).
        let (mut at, mut line, mut col) = (0usize, 0usize, 0usize);
        for i in order {
            let Some(off) = positions[i].offset().filter(|&o| o <= self.text.len()) else {
                continue;
            };
            let line_of = self.line_starts().partition_point(|&s| s as usize <= off) - 1;
            if line_of != line {
                line = line_of;
                at = self.line_starts()[line] as usize;
                col = 0;
            }
            col += self.text.get(at..off).map_or(off - at, count_chars);
            at = off;
            out[i] = Some(LineCol {
                line: u32::try_from(line + 1).unwrap_or(u32::MAX),
                column: u32::try_from(col + 1).unwrap_or(u32::MAX),
            });
        }
        out
    }

    /// The text of 1-based line `line`, without its line break.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        let i = (line as usize).checked_sub(1)?;
        let start = *self.line_starts().get(i)? as usize;
        let end = self
            .line_starts()
            .get(i + 1)
            .map_or(self.text.len(), |&e| e as usize);
        let s = self.text.get(start..end)?;
        Some(s.trim_end_matches(['\n', '\r']))
    }
}

/// Characters in `s`: bytes that do not continue a UTF-8 sequence. Counted in `u8` lanes over
/// blocks of 255 bytes, which LLVM vectorises (a plain `filter().count()` widens every byte to
/// `usize` and runs several times slower on the long lines of compact JSON).
fn count_chars(s: &str) -> usize {
    s.as_bytes()
        .chunks(255)
        .map(|block| {
            let mut n: u8 = 0;
            for &b in block {
                // Continuation bytes are 0b10xx_xxxx, i.e. -128..=-65 as `i8`.
                n += u8::from((b as i8) >= -64);
            }
            usize::from(n)
        })
        .sum()
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
        let many = [
            Pos::new(8),
            Pos::NONE,
            Pos::new(0),
            Pos::new(3),
            Pos::new(9),
            Pos::new(8),
        ];
        let one_by_one: Vec<_> = many.iter().map(|&p| s.line_col(p)).collect();
        assert_eq!(s.line_cols(&many), one_by_one);
        assert_eq!(s.line_col(Pos::new(100)), None);
    }
}
