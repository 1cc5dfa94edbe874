//! Numbered migrations, embedded at build time, applied once each under an advisory lock.

use crate::{PgValue, SqlClient, SqlError};

/// The migrations, in order: (version, name, SQL). `{{dimensions}}` is replaced by the embedding size.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "memory", include_str!("../../../migrations/0001_memory.sql"))];

/// Key of the advisory lock that serialises migration runs.
const LOCK_KEY: i64 = 0x6564_6765_636c_6177;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS edgeclaw_migrations (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// The statements of a migration file: split at semicolons that end a line (the files keep to that),
/// comments dropped.
fn statements(sql: &str, dimensions: usize) -> Vec<String> {
    let sql = sql.replace("{{dimensions}}", &dimensions.to_string());
    let without_comments: String =
        sql.lines().filter(|line| !line.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
    without_comments
        .split(";\n")
        .map(|s| s.trim().trim_end_matches(';').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Applies every migration not yet recorded, each in one transaction that holds the advisory lock, so
/// concurrent runners (a deploy and a test setup, two isolates) never interleave. Returns the versions
/// applied now.
pub async fn migrate(client: &dyn SqlClient, dimensions: usize) -> Result<Vec<i64>, SqlError> {
    let lock = || ("SELECT pg_advisory_xact_lock($1::bigint)::text".to_string(), vec![PgValue::Int(LOCK_KEY)]);
    client.transaction(&[lock(), (CREATE_TABLE.to_string(), vec![])]).await?;
    let applied: Vec<i64> =
        client.query("SELECT version FROM edgeclaw_migrations", &[]).await?.iter().map(|row| row[0].int()).collect();
    let mut now_applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let mut batch = vec![lock()];
        batch.extend(statements(sql, dimensions).into_iter().map(|s| (s, vec![])));
        batch.push((
            "INSERT INTO edgeclaw_migrations (version, name) VALUES ($1::bigint, $2::text) ON CONFLICT DO NOTHING"
                .into(),
            vec![PgValue::Int(*version), PgValue::from(*name)],
        ));
        client.transaction(&batch).await?;
        now_applied.push(*version);
    }
    Ok(now_applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_files_split_into_statements_with_dimensions_filled_in() {
        let parts = statements(MIGRATIONS[0].2, 64);
        assert!(parts[0].starts_with("CREATE EXTENSION IF NOT EXISTS vector"));
        assert!(parts.iter().any(|s| s.contains("embedding vector(64)")));
        assert!(parts.iter().all(|s| !s.contains("{{") && !s.starts_with("--") && !s.ends_with(';')));
        assert_eq!(parts.len(), 7);
    }
}
