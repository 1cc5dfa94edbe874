//! The Postgres + pgvector memory store: core's `MemoryStore` in SQL, the numbered migrations and their
//! runner. It talks to Postgres only through [`SqlClient`], which each platform implements (tokio-postgres
//! over a Workers socket through Hyperdrive, over TCP natively, Spin's Postgres interface), so the SQL lives
//! in one place.
#![warn(missing_docs)]

mod migrate;
mod store;
#[cfg(feature = "tokio-postgres")]
pub mod tokio_pg;

use async_trait::async_trait;

pub use migrate::{migrate, MIGRATIONS};
pub use store::PgMemoryStore;

/// A parameter or column value. Every query casts its parameters and columns to these types, so a
/// client only needs to map text, bigint, double precision and boolean.
#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    /// NULL.
    Null,
    /// `text` (also JSON and vectors, cast in SQL).
    Text(String),
    /// `bigint`.
    Int(i64),
    /// `double precision`.
    Float(f64),
    /// `boolean`.
    Bool(bool),
}

impl PgValue {
    /// The text, or an empty string.
    pub fn text(&self) -> &str {
        match self {
            PgValue::Text(s) => s,
            _ => "",
        }
    }

    /// The text, or `None` for NULL.
    pub fn optional_text(&self) -> Option<String> {
        match self {
            PgValue::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The integer (floats truncated), or 0.
    pub fn int(&self) -> i64 {
        match self {
            PgValue::Int(i) => *i,
            PgValue::Float(f) => *f as i64,
            _ => 0,
        }
    }

    /// The number as f64, or 0.
    pub fn float(&self) -> f64 {
        match self {
            PgValue::Float(f) => *f,
            PgValue::Int(i) => *i as f64,
            _ => 0.0,
        }
    }
}

impl From<&str> for PgValue {
    fn from(s: &str) -> Self {
        PgValue::Text(s.to_string())
    }
}

impl From<String> for PgValue {
    fn from(s: String) -> Self {
        PgValue::Text(s)
    }
}

impl From<i64> for PgValue {
    fn from(i: i64) -> Self {
        PgValue::Int(i)
    }
}

impl From<Option<String>> for PgValue {
    fn from(s: Option<String>) -> Self {
        s.map_or(PgValue::Null, PgValue::Text)
    }
}

/// A failed database call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The database could not be reached or the connection broke.
    #[error("cannot reach Postgres: {0}")]
    Connection(String),
    /// The database rejected a statement.
    #[error("Postgres error: {0}")]
    Query(String),
}

/// The SQL port: run parameterised statements (`$1`, `$2`, … with the casts the statement declares).
#[async_trait(?Send)]
pub trait SqlClient {
    /// Runs one statement and returns its rows.
    async fn query(&self, sql: &str, params: &[PgValue]) -> Result<Vec<Vec<PgValue>>, SqlError>;
    /// Runs statements in one transaction: all of them or none.
    async fn transaction(&self, statements: &[(String, Vec<PgValue>)]) -> Result<(), SqlError>;
}
