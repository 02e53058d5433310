//! The service's database: SQLite in the data dir by default, PostgreSQL by
//! URL, one set of migrations for both (sqlx's `Any` driver).
//!
//! The schema keeps to what both engines read the same way: `BIGINT`
//! integers, `TEXT` (binary values as hex), placeholders `$1, $2, …` in the
//! order they appear. Writes go through [`Db::write`], one at a time: a
//! service's decisions are serialized, so "the next sequence number" and
//! "the next nonce" are never raced for.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{MigrationSource, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Transaction};
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// One migration: a version, a name and its SQL (one or more statements).
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its version; the kit's are below 100, a role's from 100 on.
    pub version: i64,
    /// What it does, in a few words.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// The kit's own tables: the chain cursor, the outbox, logins, signed
/// requests' nonces, the audit log and its anchors, staff credentials.
const KIT_SCHEMA: &str = "
CREATE TABLE kit_cursor (name TEXT PRIMARY KEY, height BIGINT NOT NULL);
CREATE TABLE kit_outbox (
    nonce BIGINT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    tx TEXT NOT NULL, valid_until BIGINT NOT NULL, state TEXT NOT NULL,
    height BIGINT, outcome TEXT, recorded_ms BIGINT NOT NULL);
CREATE INDEX kit_outbox_by_state ON kit_outbox (state, nonce);
CREATE TABLE kit_challenges (challenge TEXT PRIMARY KEY, expires_ms BIGINT NOT NULL);
CREATE TABLE kit_sessions (
    token_hash TEXT PRIMARY KEY, did TEXT NOT NULL, roles TEXT NOT NULL,
    credentials TEXT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE TABLE kit_request_nonces (
    keyid TEXT NOT NULL, nonce TEXT NOT NULL, expires_ms BIGINT NOT NULL,
    PRIMARY KEY (keyid, nonce));
CREATE TABLE kit_audit (
    seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, entry TEXT NOT NULL,
    prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE kit_anchors (
    entries BIGINT PRIMARY KEY, head TEXT NOT NULL, tx_hash TEXT NOT NULL);
CREATE TABLE kit_staff (
    status_index BIGINT PRIMARY KEY, subject TEXT NOT NULL, role TEXT NOT NULL,
    credential_id TEXT NOT NULL UNIQUE, revoked BIGINT NOT NULL, issued_ms BIGINT NOT NULL);
";

/// The kit's migrations, run before a role's.
pub const KIT_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "kit",
        sql: KIT_SCHEMA,
    },
    Migration {
        version: 2,
        name: "vault",
        sql: tranche_vault::SCHEMA,
    },
    Migration {
        version: 3,
        name: "vault: ciphertexts as bytes",
        sql: tranche_vault::SEALED_AS_BYTES,
    },
];

/// Which engine a database is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, a file in the data dir.
    Sqlite,
    /// PostgreSQL, by URL.
    Postgres,
}

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no engine the service speaks.
    #[error("database_url must start with sqlite:// or postgres://, not {0:?}")]
    Scheme(String),
    /// Connecting failed.
    #[error("cannot open the database: {0}")]
    Connect(sqlx::Error),
    /// A migration failed or the database holds a migration this build does
    /// not know (a newer version ran on it).
    #[error("the database's schema could not be brought up to date: {0}")]
    Migrate(sqlx::migrate::MigrateError),
}

/// A migration list as sqlx reads it.
#[derive(Debug)]
struct Embedded(Vec<Migration>);

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>>
                + Send,
        >,
    > {
        Box::pin(async move {
            Ok(self
                .0
                .into_iter()
                .map(|m| {
                    sqlx::migrate::Migration::new(
                        m.version,
                        m.name.into(),
                        MigrationType::Simple,
                        sqlx::AssertSqlSafe(m.sql).into_sql_str(),
                        false,
                    )
                })
                .collect())
        })
    }
}

use sqlx::SqlSafeStr as _;

/// The service's database.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    writer: Arc<Mutex<()>>,
    _checkpointer: Option<Arc<Checkpointer>>,
}

/// How often SQLite's log is copied into its database file.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// The task that copies SQLite's log (WAL) into the database file, on a
/// connection of its own, stopped when the last handle on the database
/// goes. SQLite's default copies it in whichever commit finds the log past
/// 4 MB, inside that writer's turn: a tenth of the regulator's CPU under
/// load, on the one path every write waits for. A passive checkpoint runs
/// beside the writer and never blocks it.
#[derive(Debug)]
struct Checkpointer(tokio::task::JoinHandle<()>);

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Checkpointer {
    async fn start(options: &AnyConnectOptions) -> Result<Checkpointer, sqlx::Error> {
        use sqlx::ConnectOptions as _;
        let mut conn = options.connect().await?;
        Ok(Checkpointer(tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECKPOINT_EVERY).await;
                if let Err(e) = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&mut conn)
                    .await
                {
                    tracing::warn!(error = %e, "copying the database's log into its file");
                }
            }
        })))
    }
}

/// A write: the database transaction and the service's write turn.
#[derive(Debug)]
pub struct Write<'a> {
    /// The transaction; everything written through it commits together.
    pub tx: Transaction<'static, Any>,
    _turn: MutexGuard<'a, ()>,
}

impl Write<'_> {
    /// Commits everything written.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl Db {
    /// Opens the database at `url` and brings its schema up to date with the
    /// kit's migrations and then `role`'s (versions from 100 on).
    pub async fn open(url: &str, role: &[Migration]) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::Scheme(url.split(':').next().unwrap_or("").into()));
        };
        let options = AnyConnectOptions::from_str(url).map_err(DbError::Connect)?;
        let mut pool = AnyPoolOptions::new().max_connections(match backend {
            Backend::Sqlite => 4,
            Backend::Postgres => 8,
        });
        if backend == Backend::Sqlite {
            // Every commit reaches the disk before it returns (a decision
            // reported made is never lost), and readers never block the
            // writer; the log is copied into the file by the checkpointer.
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
                         PRAGMA wal_autocheckpoint = 0;",
                    )
                    .execute(conn)
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool
            .connect_with(options.clone())
            .await
            .map_err(DbError::Connect)?;
        let mut all: Vec<Migration> = KIT_MIGRATIONS.to_vec();
        for m in role {
            assert!(m.version >= 100, "role migrations are numbered from 100");
            all.push(*m);
        }
        let migrator = Migrator::new(Embedded(all))
            .await
            .map_err(DbError::Migrate)?;
        migrator.run(&pool).await.map_err(DbError::Migrate)?;
        let checkpointer = match backend {
            Backend::Sqlite => Some(Arc::new(
                Checkpointer::start(&options)
                    .await
                    .map_err(DbError::Connect)?,
            )),
            Backend::Postgres => None,
        };
        Ok(Db {
            pool,
            backend,
            writer: Arc::new(Mutex::new(())),
            _checkpointer: checkpointer,
        })
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Waits for the write turn and begins a transaction.
    pub async fn write(&self) -> Result<Write<'_>, sqlx::Error> {
        let turn = self.writer.lock().await;
        let tx = self.pool.begin().await?;
        Ok(Write { tx, _turn: turn })
    }
}

/// Databases for tests: a fresh SQLite file in `dir`, and a fresh PostgreSQL
/// database on the server `TRANCHE_TEST_POSTGRES` names (a URL without a
/// database, e.g. `postgres://postgres@127.0.0.1:5432`), if it is set.
/// `scripts/test.sh` starts a throwaway server and sets it.
pub async fn test_databases(dir: &std::path::Path) -> Vec<String> {
    let mut urls = vec![format!(
        "sqlite://{}?mode=rwc",
        dir.join(format!("test-{}.db", &crate::random_hex()[..12]))
            .display()
    )];
    match std::env::var("TRANCHE_TEST_POSTGRES") {
        Ok(server) => {
            sqlx::any::install_default_drivers();
            let name = format!("t{}", &crate::random_hex()[..16]);
            let admin = format!("{}/postgres", server.trim_end_matches('/'));
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("TRANCHE_TEST_POSTGRES={server}: {e}"));
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&pool)
                .await
                .expect("CREATE DATABASE");
            pool.close().await;
            urls.push(format!("{}/{name}", server.trim_end_matches('/')));
        }
        Err(_) => eprintln!(
            "note: TRANCHE_TEST_POSTGRES is not set; testing on SQLite only (scripts/test.sh sets it)"
        ),
    }
    urls
}

/// The `VALUES` list of a multi-row statement on `conn`: `rows` tuples of
/// `columns` placeholders, for a statement with no other parameter.
/// PostgreSQL gets numbered ones, `($1, $2), ($3, $4), …`; SQLite anonymous
/// ones, `(?, ?), (?, ?), …`, bound in the same order. sqlx binds each of
/// SQLite's parameters by asking SQLite its name, which SQLite finds by
/// walking the statement's list of names: binding n numbered parameters
/// took n² steps, a sixth of the exchange's CPU under load. Anonymous
/// parameters have no name to look for.
pub fn values(conn: &sqlx::AnyConnection, rows: usize, columns: usize) -> String {
    values_in(Backend::of(conn), rows, columns)
}

/// [`values`] for a database of `backend`.
pub fn values_in(backend: Backend, rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", params_in(backend, r * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Placeholders for parameters `first` to `first + n - 1` on `conn`,
/// comma-separated: `$2, $3, $4` on PostgreSQL, `?, ?, ?` on SQLite (why:
/// see [`values`]). sqlx numbers SQLite's anonymous parameters in the order
/// they come, and counts a numbered one apart, so on SQLite every
/// parameter of the statement must come from here, in the order bound.
pub fn params(conn: &sqlx::AnyConnection, first: usize, n: usize) -> String {
    params_in(Backend::of(conn), first, n)
}

/// [`params`] for a database of `backend`.
pub fn params_in(backend: Backend, first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| match backend {
            Backend::Postgres => format!("${i}"),
            Backend::Sqlite => "?".to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Backend {
    /// The engine behind `conn`.
    pub fn of(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

#[cfg(test)]
mod values_tests {
    use super::{params_in, values_in, Backend};

    #[test]
    fn placeholders_run_on_across_rows() {
        let pg = Backend::Postgres;
        assert_eq!(values_in(pg, 2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values_in(pg, 1, 1), "($1)");
        assert_eq!(values_in(pg, 0, 4), "");
        let lite = Backend::Sqlite;
        assert_eq!(values_in(lite, 2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(values_in(lite, 0, 4), "");
        assert_eq!(params_in(pg, 2, 3), "$2, $3, $4");
        assert_eq!(params_in(lite, 2, 3), "?, ?, ?");
        assert_eq!(params_in(pg, 1, 0), "");
    }
}
