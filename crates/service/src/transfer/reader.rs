//! Lines of an input read one at a time with a bound on their length: an import never holds more than one
//! line (and one batch of checked changes) of its input.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// The longest line read; a longer one is skipped and reported (`line_too_long`).
pub const MAX_LINE: usize = 256 * 1024;

/// One line of input, without its line break.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    TooLong,
    NotUtf8,
}

/// Reads lines from `inner`, counting them from 1 and the bytes read.
pub struct LineReader<R> {
    inner: R,
    number: u64,
    bytes: u64,
    buf: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, number: 0, bytes: 0, buf: Vec::new() }
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next line and its number, `None` at the end of the input.
    pub async fn next(&mut self) -> std::io::Result<Option<(u64, Line)>> {
        self.buf.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let chunk = self.inner.fill_buf().await?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let room = MAX_LINE.saturating_sub(self.buf.len());
            if take > room + usize::from(done) {
                too_long = true;
            }
            if !too_long {
                self.buf.extend_from_slice(&chunk[..take]);
            }
            self.inner.consume(take);
            self.bytes += take as u64;
            if done {
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.number += 1;
        if too_long {
            return Ok(Some((self.number, Line::TooLong)));
        }
        while self.buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
            self.buf.pop();
        }
        let line = match String::from_utf8(std::mem::take(&mut self.buf)) {
            Ok(text) => Line::Text(text),
            Err(_) => Line::NotUtf8,
        };
        Ok(Some((self.number, line)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8]) -> Vec<(u64, Line)> {
        let mut r = LineReader::new(input);
        let mut out = Vec::new();
        while let Some(l) = r.next().await.expect("reads") {
            out.push(l);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_numbered_and_bounded() {
        let long = "x".repeat(MAX_LINE + 1);
        let input = format!("a\r\n\nb\n{long}\nc");
        let mut bytes = input.into_bytes();
        bytes.extend_from_slice(b"\n\xff\n");
        let lines = read_all(&bytes).await;
        assert_eq!(
            lines,
            vec![
                (1, Line::Text("a".into())),
                (2, Line::Text(String::new())),
                (3, Line::Text("b".into())),
                (4, Line::TooLong),
                (5, Line::Text("c".into())),
                (6, Line::NotUtf8),
            ]
        );
        let exact = "y".repeat(MAX_LINE);
        assert_eq!(read_all(format!("{exact}\n").as_bytes()).await, vec![(1, Line::Text(exact))]);
    }
}
