//! Backups of a running PostgreSQL 15 (issue 12), against the real server: `pgbench -i`
//! data with pgbench writing throughout the backup.

use crate::support::db_servers::{postgres_available, Postgres};

#[test]
fn the_harness_runs_a_private_cluster() {
    if !postgres_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::init(&dir.path().join("pg"));
    assert_eq!(pg.psql("postgres", "SELECT 1+1"), "2");
}
