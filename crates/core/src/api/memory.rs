//! The memory API: `/api/memory/{namespace}/documents[/{id}]` and `/api/memory/{namespace}/search`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{parse_json, ApiError};
use crate::memory::{DocumentKind, Memory, Metadata, Namespace, NewDocument, SearchRequest};

/// What a memory request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryOp {
    /// `PUT …/documents/{id}`: create or replace a document.
    PutDocument(String),
    /// `GET …/documents/{id}`
    GetDocument(String),
    /// `DELETE …/documents/{id}`
    DeleteDocument(String),
    /// `GET …/documents?kind=&limit=&offset=`
    ListDocuments,
    /// `POST …/search`
    Search,
}

impl MemoryOp {
    /// Matches the path after `/api/memory/{namespace}/`: `None` for an unknown path, else the
    /// allowed methods and the operation if `method` is one of them.
    pub(super) fn parse(method: &str, rest: &[&str]) -> Option<(&'static [&'static str], Option<MemoryOp>)> {
        Some(match rest {
            ["documents"] => (&["GET"], (method == "GET").then_some(MemoryOp::ListDocuments)),
            ["documents", id] => {
                let id = id.to_string();
                let op = match method {
                    "PUT" => Some(MemoryOp::PutDocument(id)),
                    "GET" => Some(MemoryOp::GetDocument(id)),
                    "DELETE" => Some(MemoryOp::DeleteDocument(id)),
                    _ => None,
                };
                (&["PUT", "GET", "DELETE"], op)
            }
            ["search"] => (&["POST"], (method == "POST").then_some(MemoryOp::Search)),
            _ => return None,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    #[serde(default)]
    title: String,
    text: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    kind: Option<DocumentKind>,
}

struct ListQuery {
    kind: Option<DocumentKind>,
    limit: u32,
    offset: u32,
}

fn parse_list_query(query: Option<&str>) -> Result<ListQuery, ApiError> {
    let mut parsed = ListQuery { kind: None, limit: 100, offset: 0 };
    let invalid = |m: String| ApiError::new(400, "invalid_request", m);
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "kind" => {
                parsed.kind =
                    Some(DocumentKind::parse(&value).ok_or_else(|| invalid(format!("unknown kind `{value}`")))?)
            }
            "limit" => parsed.limit = value.parse().map_err(|_| invalid(format!("limit `{value}` is not a number")))?,
            "offset" => {
                parsed.offset = value.parse().map_err(|_| invalid(format!("offset `{value}` is not a number")))?
            }
            other => return Err(invalid(format!("unknown query parameter `{other}`"))),
        }
    }
    Ok(parsed)
}

fn to_json(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// Runs a memory request against `memory` in `namespace`; returns the status and JSON body.
pub async fn handle(
    memory: &Memory,
    namespace: &Namespace,
    op: MemoryOp,
    body: &[u8],
    query: Option<&str>,
) -> Result<(u16, Value), ApiError> {
    match op {
        MemoryOp::PutDocument(id) => {
            let put: PutBody = parse_json(body)?;
            let doc = NewDocument {
                id,
                kind: put.kind.unwrap_or(DocumentKind::Document),
                title: put.title,
                text: put.text,
                source: put.source,
                metadata: put.metadata,
            };
            let report = memory.ingest(namespace, doc).await?;
            Ok((200, to_json(&report)))
        }
        MemoryOp::GetDocument(id) => Ok((200, to_json(&memory.get(namespace, &id).await?))),
        MemoryOp::DeleteDocument(id) => {
            memory.delete(namespace, &id).await?;
            Ok((200, json!({"deleted": true})))
        }
        MemoryOp::ListDocuments => {
            let q = parse_list_query(query)?;
            let documents = memory.list(namespace, q.kind, q.limit, q.offset).await?;
            Ok((200, json!({"namespace": namespace.name(), "documents": documents})))
        }
        MemoryOp::Search => {
            let request: SearchRequest = parse_json(body)?;
            Ok((200, to_json(&memory.search(namespace, &request).await?)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_paths_and_methods_are_matched() {
        use crate::api::Route;
        let route = Route::parse("PUT", "/api/memory/notes/documents/MEMORY.md").unwrap();
        assert_eq!(route, Route::Memory { namespace: "notes".into(), op: MemoryOp::PutDocument("MEMORY.md".into()) });
        assert_eq!(
            Route::parse("POST", "/api/memory/default/search").unwrap(),
            Route::Memory { namespace: "default".into(), op: MemoryOp::Search }
        );
        assert_eq!(Route::parse("POST", "/api/memory/default/documents").unwrap_err().status, 405);
        assert_eq!(Route::parse("GET", "/api/memory/default/elsewhere").unwrap_err().status, 404);
    }

    #[test]
    fn list_queries_are_parsed_strictly() {
        let q = parse_list_query(Some("kind=note&limit=5&offset=10")).unwrap();
        assert_eq!((q.kind, q.limit, q.offset), (Some(DocumentKind::Note), 5, 10));
        assert!(parse_list_query(Some("kind=poem")).is_err());
        assert!(parse_list_query(Some("limit=-1")).is_err());
        assert!(parse_list_query(Some("colour=red")).is_err());
        assert_eq!(parse_list_query(None).unwrap().limit, 100);
    }
}
