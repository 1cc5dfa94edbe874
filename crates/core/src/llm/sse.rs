//! Incremental Server-Sent Events parser: bytes in, whole events out, however the bytes were split.

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, or `message` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Parses an SSE byte stream fed in arbitrary chunks (split lines, split UTF-8, CR/LF/CRLF endings).
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to that line ending.
    skip_lf: bool,
}

/// The stream is not valid SSE text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SSE stream: {0}")]
pub struct SseError(String);

impl SseParser {
    /// Feeds bytes, returning every event completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        let mut bytes = chunk;
        if self.skip_lf {
            self.skip_lf = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.pending.extend_from_slice(&bytes[..pos]);
            let line = std::mem::take(&mut self.pending);
            if bytes[pos] == b'\r' {
                match bytes.get(pos + 1) {
                    Some(b'\n') => bytes = &bytes[pos + 2..],
                    Some(_) => bytes = &bytes[pos + 1..],
                    None => {
                        self.skip_lf = true;
                        bytes = &[];
                    }
                }
            } else {
                bytes = &bytes[pos + 1..];
            }
            let line = String::from_utf8(line).map_err(|_| SseError("a line is not valid UTF-8".into()))?;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.pending.extend_from_slice(bytes);
        Ok(events)
    }

    /// Ends the stream: an event not yet terminated by a blank line is dispatched.
    pub fn finish(mut self) -> Result<Option<SseEvent>, SseError> {
        if !self.pending.is_empty() {
            let line = String::from_utf8(std::mem::take(&mut self.pending))
                .map_err(|_| SseError("a line is not valid UTF-8".into()))?;
            self.line(&line);
        }
        Ok(self.dispatch())
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let data = self.data.take()?;
        Some(SseEvent { event: event.unwrap_or_else(|| "message".into()), data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(parser.push(chunk).unwrap());
        }
        out.extend(parser.finish().unwrap());
        out
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into() }
    }

    #[test]
    fn events_split_at_every_byte_parse_the_same_as_whole() {
        let text = "event: a\ndata: {\"x\": 1}\n\n: comment\ndata: two\ndata: lines\n\nevent: é\ndata:no-space\n\n";
        let whole = parse_all(&[text.as_bytes()]);
        assert_eq!(whole, vec![ev("a", "{\"x\": 1}"), ev("message", "two\nlines"), ev("é", "no-space")]);
        let bytes: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
    }

    #[test]
    fn crlf_and_cr_line_endings_work_even_when_split() {
        assert_eq!(parse_all(&[b"data: a\r", b"\n\r\n", b"data: b\r\r"]), vec![ev("message", "a"), ev("message", "b")]);
    }

    #[test]
    fn an_unterminated_final_event_is_dispatched_on_finish() {
        assert_eq!(parse_all(&[b"data: [DONE]"]), vec![ev("message", "[DONE]")]);
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        assert_eq!(parse_all(&[b"\n\nevent: ping\n\n"]), vec![]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut parser = SseParser::default();
        assert!(parser.push(b"data: \xff\xfe\n\n").is_err());
    }
}
