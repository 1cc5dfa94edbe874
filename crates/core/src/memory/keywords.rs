//! What a keyword search looks for: the query's meaningful words, and which of them a chunk must contain.
//! Both stores build their full-text query from [`keyword_clauses`], so they match the same chunks.

/// Words too common to say anything about a chunk.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because",
    "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing",
    "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here",
    "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most",
    "my", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over",
    "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
];

/// Most words of one query that are searched for.
const MAX_TERMS: usize = 8;

/// The query's distinct meaningful words, lower-cased, in order: runs of letters and digits, stop words
/// and lone letters (the `s` of `user's`) dropped; `ERR-4471` gives `err` and `4471`.
pub fn keyword_terms(query: &str) -> Vec<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let word = word.to_lowercase();
        let lone_letter = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
        if !lone_letter && !STOP_WORDS.contains(&word.as_str()) && !terms.contains(&word) {
            terms.push(word);
        }
    }
    terms.truncate(MAX_TERMS);
    terms
}

/// Alternatives a matching chunk satisfies at least one of; each alternative is terms it must all
/// contain. Up to two terms, any one matches; from three on, a chunk needs two of them — a chunk that
/// shares a single common word with a long question is noise that drowns good matches when rankings
/// are fused.
pub fn keyword_clauses(query: &str) -> Vec<Vec<String>> {
    let terms = keyword_terms(query);
    if terms.len() <= 2 {
        return terms.into_iter().map(|t| vec![t]).collect();
    }
    let mut clauses = Vec::new();
    for (i, first) in terms.iter().enumerate() {
        for second in &terms[i + 1..] {
            clauses.push(vec![first.clone(), second.clone()]);
        }
    }
    clauses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_distinct_meaningful_words() {
        assert_eq!(keyword_terms("What does ERR-4471 mean for THE err?"), ["err", "4471", "mean"]);
        assert_eq!(keyword_terms("the user's 2 cats"), ["user", "2", "cats"]);
        assert_eq!(keyword_terms("the of and"), Vec::<String>::new());
        assert_eq!(keyword_terms("Größe café"), ["größe", "café"]);
        assert_eq!(keyword_terms(&"word ".repeat(3)), ["word"]);
        assert_eq!(keyword_terms("w1 w2 w3 w4 w5 w6 w7 w8 w9 w10").len(), MAX_TERMS);
    }

    #[test]
    fn short_queries_match_any_word_and_longer_ones_need_two() {
        assert_eq!(keyword_clauses("E119"), vec![vec!["e119".to_string()]]);
        assert_eq!(keyword_clauses("E119 pressure"), vec![vec!["e119".to_string()], vec!["pressure".to_string()]]);
        let clauses = keyword_clauses("boiler pressure drop");
        assert_eq!(clauses.len(), 3);
        assert!(clauses.iter().all(|c| c.len() == 2));
        assert!(keyword_clauses("to be or not").is_empty());
    }
}
