//! Redaction of text that arrives in pieces (a streamed model answer): each piece is passed on as soon
//! as no credential can still be forming at its end.
//!
//! Credentials contain no whitespace, so text up to the last whitespace is final unless a private-key
//! block has begun and not ended, or a finding crosses that point; the rest waits for the next piece.

use std::rc::Rc;

use super::leak::splice;
use super::LeakScanner;

/// Where an armored private-key block begins; everything after it waits for its end.
const BLOCK_BEGIN: &str = "-----BEGIN";
const BLOCK_END: &str = "-----END";

/// Redacts a text stream piece by piece.
pub struct StreamRedactor {
    scanner: Rc<LeakScanner>,
    pending: String,
}

impl StreamRedactor {
    /// A redactor with `scanner`'s rules and known secrets.
    pub fn new(scanner: Rc<LeakScanner>) -> StreamRedactor {
        StreamRedactor { scanner, pending: String::new() }
    }

    /// Takes the next piece and returns what may be passed on now (possibly nothing).
    pub fn push(&mut self, piece: &str) -> String {
        self.pending.push_str(piece);
        let Some(space) = self.pending.rfind(char::is_whitespace) else { return String::new() };
        let mut cut = space + self.pending[space..].chars().next().map_or(1, char::len_utf8);
        if let Some(begin) = self.pending.rfind(BLOCK_BEGIN) {
            if !self.pending[begin..].contains(BLOCK_END) {
                cut = cut.min(begin);
            }
        }
        let findings = self.scanner.scan(&self.pending);
        for finding in &findings {
            if finding.start < cut && cut < finding.end {
                cut = finding.start;
            }
        }
        let done: Vec<_> = findings.into_iter().filter(|f| f.end <= cut).collect();
        let out = splice(&self.pending[..cut], &done);
        self.pending.drain(..cut);
        out
    }

    /// Everything still held back, redacted: the end of the stream.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        self.scanner.redact(&rest).text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::builtin_rules;

    fn redactor() -> StreamRedactor {
        let scanner = LeakScanner::new(builtin_rules(), &[("DB_PASSWORD", "hunter2-correct-horse")]).unwrap();
        StreamRedactor::new(Rc::new(scanner))
    }

    fn stream(pieces: &[&str]) -> (Vec<String>, String) {
        let mut r = redactor();
        let mut out: Vec<String> = pieces.iter().map(|p| r.push(p)).collect();
        out.push(r.finish());
        let whole = out.concat();
        (out, whole)
    }

    #[test]
    fn words_flow_on_at_once_and_credentials_split_across_pieces_are_redacted() {
        let (out, whole) = stream(&[
            "Hello ",
            "there, ",
            "the pass",
            "word is hunter2-cor",
            "rect-horse and",
            " the key ",
            "ghp_0123456789abcdef",
            "ghijABCDEFGHIJ012345",
            " ok",
        ]);
        assert_eq!(out[0], "Hello ");
        assert_eq!(out[1], "there, ");
        assert_eq!(
            whole,
            "Hello there, the password is [REDACTED:secret:DB_PASSWORD] and the key [REDACTED:github_token] ok"
        );
        assert!(out.iter().all(|piece| !piece.contains("hunter2") && !piece.contains("ghp_")));
    }

    #[test]
    fn a_private_key_block_is_held_until_it_ends() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----";
        let pieces: Vec<&str> = key.split_inclusive('\n').collect();
        let mut r = redactor();
        assert_eq!(r.push("Here: "), "Here: ");
        for piece in &pieces {
            assert!(!r.push(piece).contains("MIIE"));
        }
        let rest = r.push(" done. ") + &r.finish();
        assert!(rest.contains("[REDACTED:private_key]") && !rest.contains("MIIE"), "{rest}");
    }
}
