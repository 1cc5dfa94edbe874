//! [`PgMemoryStore`]: core's `MemoryStore` in parameterised SQL (no user text is ever spliced into a
//! statement): `tsvector` + GIN for keywords, pgvector's HNSW index for cosine similarity.

use std::rc::Rc;

use async_trait::async_trait;
use edgeclaw_core::memory::{
    keyword_clauses, metadata_json, ChunkRecord, DocumentKind, DocumentRecord, DocumentSummary, Filter, MemoryError,
    MemoryStore, Metadata, Namespace, ScoredChunk,
};

use crate::{PgValue, SqlClient, SqlError};

/// Chunks inserted per statement (8 parameters each, well under Postgres' 65535).
const CHUNKS_PER_INSERT: usize = 100;

/// Columns of a search hit, in this order; the score is appended by each query.
/// The chunk columns a ranking carries: not the embedding or the `tsvector`, which would widen every
/// row it sorts.
const CANDIDATE_COLUMNS: &str = "c.namespace, c.document_id, c.chunk_index, c.heading, c.body";
const HIT_COLUMNS: &str = "c.document_id, c.chunk_index::bigint, c.heading, c.body, d.kind, d.title, d.source, \
                           d.metadata::text, d.updated_at";

/// Memory in Postgres with pgvector.
pub struct PgMemoryStore {
    client: Rc<dyn SqlClient>,
}

fn store_error(error: SqlError) -> MemoryError {
    match error {
        SqlError::Query(message) if message.contains("dimensions") => MemoryError::DimensionMismatch(message),
        other => MemoryError::Unavailable(other.to_string()),
    }
}

/// A vector as pgvector's text input, `[0.1,0.2]`.
fn vector_text(vector: &[f32]) -> String {
    let parts: Vec<String> = vector.iter().map(|x| x.to_string()).collect();
    format!("[{}]", parts.join(","))
}

fn parse_vector(text: &str) -> Vec<f32> {
    text.trim_matches(|c| c == '[' || c == ']').split(',').filter_map(|x| x.trim().parse().ok()).collect()
}

fn kind(value: &PgValue) -> DocumentKind {
    DocumentKind::parse(value.text()).unwrap_or(DocumentKind::Document)
}

fn metadata(value: &PgValue) -> Metadata {
    serde_json::from_str(value.text()).unwrap_or_default()
}

/// Filter conditions on documents `d` (numbered from `$next`) and their parameters.
fn filter_sql(filter: &Filter, next: usize) -> (String, Vec<PgValue>) {
    let mut sql = String::new();
    let mut params = Vec::new();
    if !filter.kinds.is_empty() {
        let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
        sql.push_str(&format!(" AND d.kind = ANY(string_to_array(${}::text, ','))", next + params.len()));
        params.push(PgValue::Text(kinds.join(",")));
    }
    if !filter.metadata.is_empty() {
        sql.push_str(&format!(" AND d.metadata @> ${}::text::jsonb", next + params.len()));
        params.push(PgValue::Text(metadata_json(&filter.metadata)));
    }
    (sql, params)
}

/// The `to_tsquery` text for `query` (see core's `keyword_clauses`); its words are letters and digits
/// only, so they can never be tsquery syntax.
fn tsquery(query: &str) -> Option<String> {
    let clauses: Vec<String> = keyword_clauses(query).iter().map(|terms| format!("({})", terms.join(" & "))).collect();
    (!clauses.is_empty()).then(|| clauses.join(" | "))
}

/// The query for the best `$3` chunks of `candidates` (a `SELECT c.*, … AS score FROM memory_chunks c
/// WHERE …` over `$1` namespace and `$2` query) by `order`, with their documents' columns. The ranking
/// runs on chunks alone, the document filter as a per-chunk `EXISTS`, and only the chosen rows are
/// joined with their documents — so the cost follows the hits, not the namespace's size.
fn ranked_hits(candidates: &str, order: &str, filter: &Filter) -> String {
    let conditions = filter_sql(filter, 4).0;
    let document_filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(
            " AND EXISTS (SELECT 1 FROM memory_documents d
                         WHERE d.namespace = c.namespace AND d.id = c.document_id{conditions})"
        )
    };
    // LATERAL: one index lookup per chosen chunk (a plain join may hash every document of the namespace).
    format!(
        "SELECT {HIT_COLUMNS}, c.score
         FROM ({candidates}{document_filter} ORDER BY {order} LIMIT $3::bigint) c
         CROSS JOIN LATERAL (SELECT * FROM memory_documents d
                             WHERE d.namespace = c.namespace AND d.id = c.document_id) d
         ORDER BY c.score DESC, c.document_id, c.chunk_index"
    )
}

fn hit(row: &[PgValue]) -> ScoredChunk {
    ScoredChunk {
        document_id: row[0].text().to_string(),
        chunk_index: row[1].int() as u32,
        heading: row[2].text().to_string(),
        text: row[3].text().to_string(),
        kind: kind(&row[4]),
        title: row[5].text().to_string(),
        source: row[6].optional_text(),
        metadata: metadata(&row[7]),
        updated_at: row[8].int() as u64,
        score: row[9].float() as f32,
    }
}

impl PgMemoryStore {
    /// A store over `client` (the schema must be migrated; see [`crate::migrate`]).
    pub fn new(client: Rc<dyn SqlClient>) -> Self {
        Self { client }
    }

    async fn rows(&self, sql: &str, params: &[PgValue]) -> Result<Vec<Vec<PgValue>>, MemoryError> {
        self.client.query(sql, params).await.map_err(store_error)
    }
}

#[async_trait(?Send)]
impl MemoryStore for PgMemoryStore {
    async fn document_hash(&self, ns: &Namespace, id: &str) -> Result<Option<String>, MemoryError> {
        let rows = self
            .rows(
                "SELECT content_hash FROM memory_documents WHERE namespace = $1::text AND id = $2::text",
                &[ns.key().into(), id.into()],
            )
            .await?;
        Ok(rows.first().map(|row| row[0].text().to_string()))
    }

    async fn chunk_embeddings(&self, ns: &Namespace, id: &str) -> Result<Vec<(String, Vec<f32>)>, MemoryError> {
        let rows = self
            .rows(
                "SELECT content_hash, embedding::text FROM memory_chunks
                 WHERE namespace = $1::text AND document_id = $2::text ORDER BY chunk_index",
                &[ns.key().into(), id.into()],
            )
            .await?;
        Ok(rows.iter().map(|row| (row[0].text().to_string(), parse_vector(row[1].text()))).collect())
    }

    async fn put_document(
        &self,
        ns: &Namespace,
        doc: &DocumentRecord,
        chunks: &[ChunkRecord],
    ) -> Result<(), MemoryError> {
        let key = ns.key();
        let mut statements = vec![
            (
                "INSERT INTO memory_namespaces (key) VALUES ($1::text) ON CONFLICT DO NOTHING".to_string(),
                vec![key.clone().into()],
            ),
            (
                "INSERT INTO memory_documents
                     (namespace, id, kind, title, source, metadata, content_hash, body, created_at, updated_at)
                 VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text::jsonb, $7::text, $8::text,
                         $9::bigint, $10::bigint)
                 ON CONFLICT (namespace, id) DO UPDATE SET kind = excluded.kind, title = excluded.title,
                     source = excluded.source, metadata = excluded.metadata, content_hash = excluded.content_hash,
                     body = excluded.body, updated_at = excluded.updated_at"
                    .to_string(),
                vec![
                    key.clone().into(),
                    doc.id.as_str().into(),
                    doc.kind.as_str().into(),
                    doc.title.as_str().into(),
                    doc.source.clone().into(),
                    metadata_json(&doc.metadata).into(),
                    doc.content_hash.as_str().into(),
                    doc.text.as_str().into(),
                    PgValue::Int(doc.created_at as i64),
                    PgValue::Int(doc.updated_at as i64),
                ],
            ),
            (
                "DELETE FROM memory_chunks WHERE namespace = $1::text AND document_id = $2::text".to_string(),
                vec![key.clone().into(), doc.id.as_str().into()],
            ),
        ];
        for batch in chunks.chunks(CHUNKS_PER_INSERT) {
            let mut values = Vec::new();
            let mut params = Vec::new();
            for chunk in batch {
                let n = params.len();
                values.push(format!(
                    "(${}::text, ${}::text, ${}::bigint, ${}::text, ${}::text, ${}::text, ${}::text::vector)",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6,
                    n + 7
                ));
                params.extend([
                    key.clone().into(),
                    doc.id.as_str().into(),
                    PgValue::Int(chunk.index.into()),
                    chunk.heading.as_str().into(),
                    chunk.text.as_str().into(),
                    chunk.content_hash.as_str().into(),
                    if chunk.embedding.is_empty() { PgValue::Null } else { vector_text(&chunk.embedding).into() },
                ]);
            }
            statements.push((
                format!(
                    "INSERT INTO memory_chunks (namespace, document_id, chunk_index, heading, body, content_hash, embedding)
                     VALUES {}",
                    values.join(", ")
                ),
                params,
            ));
        }
        self.client.transaction(&statements).await.map_err(store_error)
    }

    async fn get_document(&self, ns: &Namespace, id: &str) -> Result<Option<DocumentRecord>, MemoryError> {
        let rows = self
            .rows(
                "SELECT id, kind, title, source, metadata::text, content_hash, body, created_at, updated_at
                 FROM memory_documents WHERE namespace = $1::text AND id = $2::text",
                &[ns.key().into(), id.into()],
            )
            .await?;
        Ok(rows.first().map(|row| DocumentRecord {
            id: row[0].text().to_string(),
            kind: kind(&row[1]),
            title: row[2].text().to_string(),
            source: row[3].optional_text(),
            metadata: metadata(&row[4]),
            content_hash: row[5].text().to_string(),
            text: row[6].text().to_string(),
            created_at: row[7].int() as u64,
            updated_at: row[8].int() as u64,
        }))
    }

    async fn list_documents(
        &self,
        ns: &Namespace,
        kind_filter: Option<DocumentKind>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<DocumentSummary>, MemoryError> {
        let rows = self
            .rows(
                "SELECT d.id, d.kind, d.title, d.source, d.metadata::text, d.updated_at,
                        (SELECT count(*) FROM memory_chunks c WHERE c.namespace = d.namespace AND c.document_id = d.id)
                 FROM memory_documents d
                 WHERE d.namespace = $1::text AND ($2::text IS NULL OR d.kind = $2::text)
                 ORDER BY d.updated_at DESC, d.id LIMIT $3::bigint OFFSET $4::bigint",
                &[
                    ns.key().into(),
                    kind_filter.map(|k| k.as_str().to_string()).into(),
                    PgValue::Int(limit.into()),
                    PgValue::Int(offset.into()),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| DocumentSummary {
                id: row[0].text().to_string(),
                kind: kind(&row[1]),
                title: row[2].text().to_string(),
                source: row[3].optional_text(),
                metadata: metadata(&row[4]),
                updated_at: row[5].int() as u64,
                chunks: row[6].int() as u32,
            })
            .collect())
    }

    async fn delete_document(&self, ns: &Namespace, id: &str) -> Result<bool, MemoryError> {
        let rows = self
            .rows(
                "DELETE FROM memory_documents WHERE namespace = $1::text AND id = $2::text RETURNING id",
                &[ns.key().into(), id.into()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn namespace_exists(&self, ns: &Namespace) -> Result<bool, MemoryError> {
        let rows =
            self.rows("SELECT 1::bigint FROM memory_namespaces WHERE key = $1::text", &[ns.key().into()]).await?;
        Ok(!rows.is_empty())
    }

    async fn keyword_search(
        &self,
        ns: &Namespace,
        query: &str,
        limit: u32,
        filter: &Filter,
    ) -> Result<Vec<ScoredChunk>, MemoryError> {
        let Some(tsquery) = tsquery(query) else { return Ok(Vec::new()) };
        let sql = ranked_hits(
            &format!(
                "SELECT {CANDIDATE_COLUMNS}, ts_rank_cd(c.tsv, to_tsquery('english', $2::text))::float8 AS score
                 FROM memory_chunks c
                 WHERE c.namespace = $1::text AND c.tsv @@ to_tsquery('english', $2::text)"
            ),
            "score DESC, c.document_id, c.chunk_index",
            filter,
        );
        let filter_params = filter_sql(filter, 4).1;
        let mut params = vec![ns.key().into(), tsquery.into(), PgValue::Int(limit.into())];
        params.extend(filter_params);
        Ok(self.rows(&sql, &params).await?.iter().map(|row| hit(row)).collect())
    }

    async fn vector_search(
        &self,
        ns: &Namespace,
        embedding: &[f32],
        limit: u32,
        filter: &Filter,
    ) -> Result<Vec<ScoredChunk>, MemoryError> {
        let sql = ranked_hits(
            &format!(
                "SELECT {CANDIDATE_COLUMNS}, (1 - (c.embedding <=> $2::text::vector))::float8 AS score
                 FROM memory_chunks c
                 WHERE c.namespace = $1::text AND c.embedding IS NOT NULL"
            ),
            "c.embedding <=> $2::text::vector",
            filter,
        );
        let filter_params = filter_sql(filter, 4).1;
        let mut params = vec![ns.key().into(), vector_text(embedding).into(), PgValue::Int(limit.into())];
        params.extend(filter_params);
        Ok(self.rows(&sql, &params).await?.iter().map(|row| hit(row)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_pgvector_text() {
        let v = vec![0.25, -1.0, 3.5e-3];
        assert_eq!(parse_vector(&vector_text(&v)), v);
        assert!(parse_vector("").is_empty());
    }

    #[test]
    fn filters_number_their_parameters_after_the_fixed_ones() {
        let mut filter = Filter { kinds: vec![DocumentKind::Fact, DocumentKind::Note], ..Filter::default() };
        filter.metadata.insert("topic".into(), "home".into());
        let (sql, params) = filter_sql(&filter, 4);
        assert!(sql.contains("$4::text") && sql.contains("$5::text::jsonb"), "{sql}");
        assert_eq!(params, vec![PgValue::Text("fact,note".into()), PgValue::Text("{\"topic\":\"home\"}".into())]);
    }

    #[test]
    fn keyword_queries_become_tsquery_clauses() {
        assert_eq!(tsquery("the boiler"), Some("(boiler)".into()));
        assert_eq!(
            tsquery("boiler E119 pressure"),
            Some("(boiler & e119) | (boiler & pressure) | (e119 & pressure)".into())
        );
        assert_eq!(tsquery("it's & | !"), None);
    }

    #[test]
    fn dimension_errors_are_recognised() {
        let err = store_error(SqlError::Query("expected 64 dimensions, not 32".into()));
        assert!(matches!(err, MemoryError::DimensionMismatch(_)));
        assert!(matches!(store_error(SqlError::Connection("refused".into())), MemoryError::Unavailable(_)));
    }
}
