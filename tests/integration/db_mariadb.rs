//! Backups of a running MariaDB 10.11 (issue 12), against the real server.

use crate::support::db_servers::{available, MariaDb};

#[test]
fn the_harness_runs_a_private_server() {
    if !available("mariadbd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = MariaDb::init(&dir.path().join("maria"));
    assert_eq!(db.sql("SELECT 1+1"), "2");
}
