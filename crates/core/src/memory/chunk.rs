//! Splitting Markdown into chunks that respect its structure: a heading starts a new chunk, code blocks
//! and paragraphs stay whole when they fit, and neighbouring chunks of one section overlap a little so
//! a sentence cut at a boundary is still found.

/// How big chunks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Aim for chunks of about this many characters.
    pub target_chars: usize,
    /// Characters of the previous chunk repeated at the start of the next one in the same section.
    pub overlap_chars: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self { target_chars: 1_200, overlap_chars: 150 }
    }
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChunk {
    /// The heading path it sits under, e.g. `Setup > Linux` (empty before the first heading).
    pub heading: String,
    /// The chunk's text.
    pub text: String,
}

enum Block {
    Heading { level: usize, title: String },
    Text(String),
}

/// Splits `text` into blocks: headings, fenced code blocks (kept whole) and paragraphs.
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut fence: Option<(String, Vec<&str>)> = None;
    let flush = |paragraph: &mut Vec<&str>, out: &mut Vec<Block>| {
        if !paragraph.is_empty() {
            out.push(Block::Text(paragraph.join("\n")));
            paragraph.clear();
        }
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some((marker, lines)) = fence.as_mut() {
            lines.push(line);
            if trimmed.starts_with(marker.as_str()) && trimmed.trim_end().chars().all(|c| c == '`' || c == '~') {
                out.push(Block::Text(lines.join("\n")));
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            flush(&mut paragraph, &mut out);
            let marker: String = trimmed.chars().take_while(|c| *c == '`' || *c == '~').collect();
            fence = Some((marker, vec![line]));
            continue;
        }
        let level = trimmed.chars().take_while(|c| *c == '#').count();
        if (1..=6).contains(&level) && trimmed[level..].starts_with(' ') {
            flush(&mut paragraph, &mut out);
            out.push(Block::Heading { level, title: trimmed[level..].trim().trim_end_matches('#').trim().to_string() });
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut paragraph, &mut out);
        } else {
            paragraph.push(line);
        }
    }
    if let Some((_, lines)) = fence {
        out.push(Block::Text(lines.join("\n")));
    }
    flush(&mut paragraph, &mut out);
    out
}

/// Cuts a block longer than `max` at line, then sentence, then word boundaries.
fn split_long(text: &str, max: usize) -> Vec<String> {
    if text.len() <= max {
        return vec![text.to_string()];
    }
    let mut pieces = Vec::new();
    let mut current = String::new();
    let units = text.split_inclusive(['\n', '.', '!', '?']).flat_map(|unit| {
        if unit.len() <= max {
            vec![unit.to_string()]
        } else {
            unit.split_inclusive(' ').map(str::to_string).collect()
        }
    });
    for unit in units {
        if !current.is_empty() && current.len() + unit.len() > max {
            pieces.push(std::mem::take(&mut current).trim().to_string());
        }
        if unit.len() > max {
            // a single "word" longer than a chunk: cut it at character boundaries
            let mut rest = unit.as_str();
            while rest.len() > max {
                let mut cut = max;
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                pieces.push(rest[..cut].to_string());
                rest = &rest[cut..];
            }
            current.push_str(rest);
        } else {
            current.push_str(&unit);
        }
    }
    if !current.trim().is_empty() {
        pieces.push(current.trim().to_string());
    }
    pieces.retain(|p| !p.is_empty());
    pieces
}

/// The last `chars` characters of `text`, starting at a word boundary.
fn tail(text: &str, chars: usize) -> &str {
    if text.len() <= chars {
        return text;
    }
    let mut start = text.len() - chars;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    match text[start..].find(char::is_whitespace) {
        Some(space) => text[start + space..].trim_start(),
        None => &text[start..],
    }
}

/// Splits Markdown into chunks of about `options.target_chars`.
pub fn chunk_markdown(text: &str, options: ChunkOptions) -> Vec<TextChunk> {
    let target = options.target_chars.max(100);
    let mut chunks = Vec::new();
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut current = String::new();
    let mut overlap = String::new();
    let heading = |path: &[(usize, String)]| path.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" > ");
    let push = |current: &mut String, path: &[(usize, String)], chunks: &mut Vec<TextChunk>| {
        if !current.trim().is_empty() {
            chunks.push(TextChunk { heading: heading(path), text: current.trim().to_string() });
        }
        current.clear();
    };
    for block in blocks(text) {
        match block {
            Block::Heading { level, title } => {
                push(&mut current, &path, &mut chunks);
                overlap.clear();
                path.retain(|(l, _)| *l < level);
                path.push((level, title));
            }
            Block::Text(body) => {
                for piece in split_long(&body, target) {
                    if !current.is_empty() && current.len() + piece.len() + 2 > target {
                        overlap = tail(&current, options.overlap_chars).to_string();
                        push(&mut current, &path, &mut chunks);
                    }
                    if current.is_empty() && !overlap.is_empty() {
                        current.push_str(&overlap);
                        current.push_str("\n\n");
                        overlap.clear();
                    } else if !current.is_empty() {
                        current.push_str("\n\n");
                    }
                    current.push_str(&piece);
                }
            }
        }
    }
    push(&mut current, &path, &mut chunks);
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(target: usize, overlap: usize) -> ChunkOptions {
        ChunkOptions { target_chars: target, overlap_chars: overlap }
    }

    #[test]
    fn headings_start_chunks_and_name_their_path() {
        let text = "Intro line.\n\n# Setup\nInstall it.\n\n## Linux\nUse apt.\n\n# Usage\nRun it.";
        let chunks = chunk_markdown(text, ChunkOptions::default());
        let shown: Vec<(&str, &str)> = chunks.iter().map(|c| (c.heading.as_str(), c.text.as_str())).collect();
        assert_eq!(
            shown,
            [("", "Intro line."), ("Setup", "Install it."), ("Setup > Linux", "Use apt."), ("Usage", "Run it.")]
        );
    }

    #[test]
    fn code_blocks_stay_whole_even_with_blank_lines_and_hashes() {
        let code = "```python\n# not a heading\n\nprint('hi')\n```";
        let text = format!("# Code\nBefore.\n\n{code}\n\nAfter.");
        let chunks = chunk_markdown(&text, ChunkOptions::default());
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].text.contains(code), "{:?}", chunks[0].text);
        assert_eq!(chunks[0].heading, "Code");
    }

    #[test]
    fn long_sections_split_near_the_target_with_overlap() {
        let paragraphs: Vec<String> =
            (0..12).map(|i| format!("Paragraph {i} talks about topic number {i} in some detail.")).collect();
        let chunks = chunk_markdown(&paragraphs.join("\n\n"), small(200, 40));
        assert!(chunks.len() > 3);
        for chunk in &chunks {
            assert!(chunk.text.len() <= 200 + 40 + 2, "{} chars", chunk.text.len());
        }
        // each later chunk begins with the end of the one before
        for pair in chunks.windows(2) {
            let start: String = pair[1].text.split("\n\n").next().unwrap().to_string();
            assert!(pair[0].text.ends_with(&start), "{:?} / {:?}", pair[0].text, start);
        }
        for p in &paragraphs {
            assert!(chunks.iter().any(|c| c.text.contains(p.as_str())), "lost {p}");
        }
    }

    #[test]
    fn a_huge_paragraph_is_cut_at_sentences_and_words() {
        let sentence = "This sentence is about forty characters. ";
        let text = sentence.repeat(50);
        let chunks = chunk_markdown(&text, small(200, 0));
        assert!(chunks.len() >= 10);
        assert!(chunks.iter().all(|c| c.text.len() <= 200 && c.text.ends_with('.')));
        let unbroken = "x".repeat(450);
        let chunks = chunk_markdown(&unbroken, small(200, 0));
        assert_eq!(chunks.iter().map(|c| c.text.len()).collect::<Vec<_>>(), [200, 200, 50]);
    }

    #[test]
    fn multibyte_text_is_never_cut_inside_a_character() {
        let text = "é".repeat(500);
        let chunks = chunk_markdown(&text, small(101, 0));
        assert_eq!(chunks.iter().map(|c| c.text.chars().filter(|c| *c == 'é').count()).sum::<usize>(), 500);
    }

    #[test]
    fn empty_and_blank_text_give_no_chunks() {
        assert!(chunk_markdown("", ChunkOptions::default()).is_empty());
        assert!(chunk_markdown("\n\n   \n", ChunkOptions::default()).is_empty());
    }
}
