//! Ranking: keyword and vector results fused by reciprocal-rank fusion, with optional recency decay.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::store::{Filter, ScoredChunk};
use super::MemoryError;

/// Which signals rank the results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Keyword and vector ranks fused.
    #[default]
    Hybrid,
    /// Full-text rank only.
    Keyword,
    /// Vector similarity only.
    Vector,
}

fn default_k() -> u32 {
    5
}

fn default_rrf_k() -> f32 {
    60.0
}

/// A search, as the API and the tools ask for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// How many results (1–50).
    #[serde(default = "default_k")]
    pub k: u32,
    /// Which signals to use.
    #[serde(default)]
    pub mode: SearchMode,
    /// Restrictions.
    #[serde(default)]
    pub filter: Filter,
    /// The `k` of reciprocal-rank fusion: larger flattens the rank curve.
    #[serde(default = "default_rrf_k")]
    pub rrf_k: f32,
    /// Halve a result's score for every this many days since its document changed.
    #[serde(default)]
    pub recency_half_life_days: Option<f64>,
}

impl SearchRequest {
    /// A hybrid search for `query` with default settings.
    pub fn new(query: impl Into<String>, k: u32) -> Self {
        Self {
            query: query.into(),
            k,
            mode: SearchMode::Hybrid,
            filter: Filter::default(),
            rrf_k: default_rrf_k(),
            recency_half_life_days: None,
        }
    }

    /// Checks the bounds of every field.
    pub fn validate(&self) -> Result<(), MemoryError> {
        let invalid = |m: &str| Err(MemoryError::Invalid(m.to_string()));
        if self.query.trim().is_empty() {
            return invalid("the query is empty");
        }
        if self.query.len() > 4_096 {
            return Err(MemoryError::TooLarge("the query is longer than 4096 bytes".into()));
        }
        if !(1..=50).contains(&self.k) {
            return invalid("k must be from 1 to 50");
        }
        if !(self.rrf_k.is_finite() && self.rrf_k >= 1.0) {
            return invalid("rrf_k must be at least 1");
        }
        if self.recency_half_life_days.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
            return invalid("recency_half_life_days must be positive");
        }
        Ok(())
    }

    /// Candidates fetched from each signal before fusion.
    pub(super) fn candidates(&self) -> u32 {
        (self.k * 4).max(20)
    }
}

/// One result: the chunk with its final score (fused, or the single signal's), and where it ranked in
/// each signal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The chunk and its document; `score` is the final score (higher is better).
    #[serde(flatten)]
    pub chunk: ScoredChunk,
    /// Rank in the keyword results (1-based), if it was there.
    pub keyword_rank: Option<u32>,
    /// Rank in the vector results (1-based), if it was there.
    pub vector_rank: Option<u32>,
}

/// Fuses `keyword` and `vector` results (each best first) into at most `request.k` hits.
pub(super) fn fuse(
    request: &SearchRequest,
    keyword: Vec<ScoredChunk>,
    vector: Vec<ScoredChunk>,
    now_ms: u64,
) -> Vec<SearchHit> {
    let fused = request.mode == SearchMode::Hybrid;
    let mut hits: Vec<SearchHit> = Vec::new();
    let mut position: HashMap<(String, u32), usize> = HashMap::new();
    for (from_keyword, list) in [(true, keyword), (false, vector)] {
        for (i, chunk) in list.into_iter().enumerate() {
            let rank = i as u32 + 1;
            let contribution = if fused { 1.0 / (request.rrf_k + rank as f32) } else { chunk.score };
            let key = (chunk.document_id.clone(), chunk.chunk_index);
            let index = *position.entry(key).or_insert_with(|| {
                hits.push(SearchHit {
                    chunk: ScoredChunk { score: 0.0, ..chunk },
                    keyword_rank: None,
                    vector_rank: None,
                });
                hits.len() - 1
            });
            let hit = &mut hits[index];
            hit.chunk.score += contribution;
            if from_keyword {
                hit.keyword_rank = Some(rank);
            } else {
                hit.vector_rank = Some(rank);
            }
        }
    }
    if let Some(half_life) = request.recency_half_life_days {
        for hit in &mut hits {
            let age_days = now_ms.saturating_sub(hit.chunk.updated_at) as f64 / 86_400_000.0;
            hit.chunk.score *= 0.5f64.powf(age_days / half_life) as f32;
        }
    }
    hits.sort_by(|a, b| {
        b.chunk
            .score
            .total_cmp(&a.chunk.score)
            .then_with(|| a.chunk.document_id.cmp(&b.chunk.document_id))
            .then_with(|| a.chunk.chunk_index.cmp(&b.chunk.chunk_index))
    });
    hits.truncate(request.k as usize);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{DocumentKind, Metadata};

    fn chunk(doc: &str, score: f32, updated_at: u64) -> ScoredChunk {
        ScoredChunk {
            document_id: doc.into(),
            chunk_index: 0,
            kind: DocumentKind::Document,
            title: doc.into(),
            heading: String::new(),
            text: format!("text of {doc}"),
            source: None,
            metadata: Metadata::new(),
            updated_at,
            score,
        }
    }

    #[test]
    fn reciprocal_rank_fusion_rewards_agreement() {
        let request = SearchRequest::new("q", 3);
        let keyword = vec![chunk("a", 9.0, 0), chunk("b", 5.0, 0), chunk("c", 1.0, 0)];
        let vector = vec![chunk("b", 0.9, 0), chunk("d", 0.8, 0), chunk("a", 0.1, 0)];
        let hits = fuse(&request, keyword, vector, 0);
        let ids: Vec<&str> = hits.iter().map(|h| h.chunk.document_id.as_str()).collect();
        assert_eq!(ids, ["b", "a", "d"]);
        assert_eq!((hits[0].keyword_rank, hits[0].vector_rank), (Some(2), Some(1)));
        assert!((hits[0].chunk.score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-6);
    }

    #[test]
    fn a_single_signal_keeps_its_own_scores_and_order() {
        let request = SearchRequest { mode: SearchMode::Keyword, ..SearchRequest::new("q", 5) };
        let hits = fuse(&request, vec![chunk("a", 3.0, 0), chunk("b", 2.0, 0)], vec![], 0);
        assert_eq!(hits.iter().map(|h| h.chunk.score).collect::<Vec<_>>(), [3.0, 2.0]);
        assert_eq!(hits[1].vector_rank, None);
    }

    #[test]
    fn recency_decay_halves_per_half_life() {
        let day = 86_400_000;
        let request =
            SearchRequest { mode: SearchMode::Vector, recency_half_life_days: Some(1.0), ..SearchRequest::new("q", 5) };
        let hits = fuse(&request, vec![], vec![chunk("old", 1.0, 0), chunk("new", 0.6, 2 * day)], 2 * day);
        assert_eq!(hits[0].chunk.document_id, "new");
        assert!((hits[1].chunk.score - 0.25).abs() < 1e-6);
    }

    #[test]
    fn requests_are_bounded() {
        assert!(SearchRequest::new("q", 0).validate().is_err());
        assert!(SearchRequest::new(" ", 5).validate().is_err());
        assert!(SearchRequest::new("q".repeat(5000), 5).validate().is_err());
        assert!(SearchRequest { rrf_k: 0.0, ..SearchRequest::new("q", 5) }.validate().is_err());
        assert!(SearchRequest::new("q", 50).validate().is_ok());
    }
}
