//! [`SqlClient`] calls over a tokio-postgres [`Client`], whatever transport the platform connected it
//! with (a Workers socket, TCP). Driving the connection is the platform's job.

use async_trait::async_trait;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Client;

use crate::{PgValue, SqlClient, SqlError};

/// A [`SqlClient`] over one tokio-postgres connection.
pub struct TokioPgClient(pub Client);

#[async_trait(?Send)]
impl SqlClient for TokioPgClient {
    async fn query(&self, sql: &str, params: &[PgValue]) -> Result<Vec<Vec<PgValue>>, SqlError> {
        query(&self.0, sql, params).await
    }

    async fn transaction(&self, statements: &[(String, Vec<PgValue>)]) -> Result<(), SqlError> {
        transaction(&self.0, statements).await
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for PgValue {
    fn to_sql(&self, ty: &Type, out: &mut tokio_postgres::types::private::BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (PgValue::Null, _) => Ok(IsNull::Yes),
            (PgValue::Text(s), &Type::TEXT | &Type::VARCHAR) => s.to_sql(ty, out),
            (PgValue::Int(i), &Type::INT8) => i.to_sql(ty, out),
            (PgValue::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (PgValue::Float(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (PgValue::Bool(b), &Type::BOOL) => b.to_sql(ty, out),
            (value, ty) => Err(format!("{value:?} cannot be sent as {ty}").into()),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Connects natively over TCP (no TLS), driving the connection on the current tokio runtime.
#[cfg(feature = "cli")]
pub async fn connect(url: &str) -> Result<TokioPgClient, SqlError> {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| SqlError::Connection(e.to_string()))?;
    tokio::spawn(connection);
    Ok(TokioPgClient(client))
}

fn query_error(error: tokio_postgres::Error) -> SqlError {
    match error.as_db_error() {
        Some(db) => SqlError::Query(db.message().to_string()),
        None if error.is_closed() => SqlError::Connection(error.to_string()),
        None => SqlError::Query(error.to_string()),
    }
}

fn value(row: &tokio_postgres::Row, index: usize) -> Result<PgValue, SqlError> {
    let ty = row.columns()[index].type_();
    let read = |e: tokio_postgres::Error| SqlError::Query(e.to_string());
    Ok(match *ty {
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
            row.try_get::<_, Option<String>>(index).map_err(read)?.map_or(PgValue::Null, PgValue::Text)
        }
        Type::INT8 => row.try_get::<_, Option<i64>>(index).map_err(read)?.map_or(PgValue::Null, PgValue::Int),
        Type::INT4 => {
            row.try_get::<_, Option<i32>>(index).map_err(read)?.map_or(PgValue::Null, |i| PgValue::Int(i.into()))
        }
        Type::INT2 => {
            row.try_get::<_, Option<i16>>(index).map_err(read)?.map_or(PgValue::Null, |i| PgValue::Int(i.into()))
        }
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(index).map_err(read)?.map_or(PgValue::Null, PgValue::Float),
        Type::FLOAT4 => {
            row.try_get::<_, Option<f32>>(index).map_err(read)?.map_or(PgValue::Null, |f| PgValue::Float(f.into()))
        }
        Type::BOOL => row.try_get::<_, Option<bool>>(index).map_err(read)?.map_or(PgValue::Null, PgValue::Bool),
        ref other => return Err(SqlError::Query(format!("column {index} has type {other}; cast it in the query"))),
    })
}

/// The wire type a value is sent as (NULL travels as text; statements cast every parameter).
fn wire_type(value: &PgValue) -> Type {
    match value {
        PgValue::Null | PgValue::Text(_) => Type::TEXT,
        PgValue::Int(_) => Type::INT8,
        PgValue::Float(_) => Type::FLOAT8,
        PgValue::Bool(_) => Type::BOOL,
    }
}

/// Runs one statement on `client`, with parameter types given up front so it takes one round trip
/// instead of a prepare and an execute.
pub async fn query(client: &Client, sql: &str, params: &[PgValue]) -> Result<Vec<Vec<PgValue>>, SqlError> {
    let typed: Vec<(&(dyn ToSql + Sync), Type)> =
        params.iter().map(|p| (p as &(dyn ToSql + Sync), wire_type(p))).collect();
    let rows = client.query_typed(sql, &typed).await.map_err(query_error)?;
    rows.iter().map(|row| (0..row.len()).map(|i| value(row, i)).collect()).collect()
}

/// Runs statements in one transaction on `client`, rolling back if any fails.
pub async fn transaction(client: &Client, statements: &[(String, Vec<PgValue>)]) -> Result<(), SqlError> {
    client.batch_execute("BEGIN").await.map_err(query_error)?;
    for (sql, params) in statements {
        if let Err(error) = query(client, sql, params).await {
            // The rollback's own failure would hide the real error; the connection resets the transaction anyway.
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(error);
        }
    }
    client.batch_execute("COMMIT").await.map_err(query_error)
}
