//! What this machine has seen of the repository (the `repository` table): whether it
//! was encrypted. Kept by a rebuild: the point is to remember what the repository no
//! longer says.

use rusqlite::{params, OptionalExtension};

use crate::catalog::{Catalog, CatalogError, Result};
use crate::repo::Repository;

impl Catalog {
    /// Remembers that the repository is encrypted, and refuses it once its config says
    /// otherwise: the key files bind an encrypted config (FORMAT.md 3.4), but a config
    /// replaced together with deleted key files can only be caught by a reader that saw
    /// the repository before.
    pub(in crate::catalog) fn check_encryption(&self, repo: &Repository) -> Result<()> {
        let encrypted = repo.config().encrypted();
        let conn = self.conn();
        let seen: Option<String> = conn
            .query_row(
                "SELECT value FROM repository WHERE key = 'encrypted'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql_err(e))?;
        match (seen.as_deref(), encrypted) {
            (Some("true"), false) => Err(CatalogError::Downgraded {
                repo: repo.store().description().to_string(),
            }),
            (Some("true"), true) | (Some("false"), false) => Ok(()),
            _ => conn
                .execute(
                    "INSERT OR REPLACE INTO repository (key, value) VALUES ('encrypted', ?1)",
                    params![encrypted.to_string()],
                )
                .map(|_| ())
                .map_err(|e| self.sql_err(e)),
        }
    }
}
