//! The points the catalog knows: listing them by instance, time and kind, what `latest`
//! names, and the forgotten points.

use rusqlite::{params, Connection};

use crate::catalog::{Catalog, Result};
use crate::model::{Forgotten, Manifest, ManifestId, PointKind};
use crate::repo;

/// Which points a listing wants: a closed time range (either end open when `None`) and
/// optionally one kind (as [`Manifest::point_kind`] tells it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PointQuery {
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub kind: Option<PointKind>,
}

/// A point as the catalog knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointRecord {
    pub id: ManifestId,
    pub manifest: Manifest,
}

/// The point `latest` names among an instance's points (oldest first).
pub fn latest_of(points: impl IntoIterator<Item = PointRecord>) -> Option<PointRecord> {
    points
        .into_iter()
        .filter(|p| p.manifest.point_kind() != PointKind::Safety)
        .last()
}

/// A point kind as the `points.kind` column holds it (its JSON spelling).
fn kind_text(kind: PointKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn insert_point_conn(
    conn: &Connection,
    id: &ManifestId,
    m: &Manifest,
) -> rusqlite::Result<()> {
    let kind = kind_text(m.kind);
    conn.execute(
        "INSERT OR REPLACE INTO points (id, instance, name, kind, time_ns, root, parent, manifest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id.to_hex(),
            m.instance,
            m.name,
            kind,
            m.time_ns,
            &m.root.0[..],
            m.parent,
            serde_json::to_string(m).expect("manifest serializes"),
        ],
    )?;
    Ok(())
}

impl Catalog {
    pub fn insert_point(&self, id: &ManifestId, m: &Manifest) -> Result<()> {
        let conn = self.conn();
        insert_point_conn(&conn, id, m).map_err(|e| self.sql_err(e))
    }

    /// Points of one instance (or all), oldest first.
    pub fn points(&self, instance: Option<&str>) -> Result<Vec<PointRecord>> {
        self.points_matching(instance, &PointQuery::default())
    }

    /// Points of one instance (or all) that `q` wants, oldest first.
    pub fn points_matching(
        &self,
        instance: Option<&str>,
        q: &PointQuery,
    ) -> Result<Vec<PointRecord>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, manifest FROM points WHERE (?1 IS NULL OR instance = ?1)
                   AND time_ns >= ?2 AND time_ns <= ?3
                   AND (?4 IS NULL OR kind = ?4)
                 ORDER BY instance, time_ns, name",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map(
                params![
                    instance,
                    q.since_ns.unwrap_or(i64::MIN),
                    q.until_ns.unwrap_or(i64::MAX),
                    // The column holds the stored kind: safety points are `manual` there.
                    q.kind.filter(|k| *k == PointKind::Scheduled).map(kind_text)
                ],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| self.sql_err(e))?;
            let id = ManifestId::from_hex(&id)
                .ok_or_else(|| repo::RepoError::Index(format!("bad point id {id}")))?;
            let manifest: Manifest = serde_json::from_str(&json)
                .map_err(|e| repo::RepoError::Index(format!("cached manifest: {e}")))?;
            if q.kind.is_none_or(|k| manifest.point_kind() == k) {
                out.push(PointRecord { id, manifest });
            }
        }
        Ok(out)
    }

    /// The newest point of an instance of any kind: the parent a new point names.
    pub fn newest_point(&self, instance: &str) -> Result<Option<PointRecord>> {
        Ok(self.points(Some(instance))?.pop())
    }

    /// What `latest` names: the newest point that is not a safety point (restoring
    /// `latest` must never bring back what an in-place restore replaced).
    pub fn latest_point(&self, instance: &str) -> Result<Option<PointRecord>> {
        Ok(latest_of(self.points(Some(instance))?))
    }

    /// A point by name, or `latest`.
    pub fn find_point(&self, instance: &str, name: &str) -> Result<Option<PointRecord>> {
        let points = self.points(Some(instance))?;
        if name == "latest" {
            return Ok(latest_of(points));
        }
        Ok(points.into_iter().find(|p| p.manifest.name == name))
    }

    pub fn instances(&self) -> Result<Vec<String>> {
        self.strings("SELECT DISTINCT instance FROM points ORDER BY instance")
    }

    /// Records a forgotten point and drops it from the points.
    pub fn insert_forgotten(&self, f: &Forgotten) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.sql_err(e))?;
        tx.execute(
            "INSERT OR IGNORE INTO forgotten (id, instance, parent) VALUES (?1, ?2, ?3)",
            params![f.id.to_hex(), f.manifest.instance, f.manifest.parent],
        )
        .map_err(|e| self.sql_err(e))?;
        tx.execute("DELETE FROM points WHERE id = ?1", [f.id.to_hex()])
            .map_err(|e| self.sql_err(e))?;
        tx.commit().map_err(|e| self.sql_err(e))
    }

    /// Forgotten points of one instance (or all): (instance, id, parent).
    pub fn forgotten(
        &self,
        instance: Option<&str>,
    ) -> Result<Vec<(String, ManifestId, Option<String>)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT instance, id, parent FROM forgotten WHERE ?1 IS NULL OR instance = ?1
                 ORDER BY instance, id",
            )
            .map_err(|e| self.sql_err(e))?;
        let rows = stmt
            .query_map([instance], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?))
            })
            .map_err(|e| self.sql_err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (instance, id, parent) = row.map_err(|e| self.sql_err(e))?;
            let id = ManifestId::from_hex(&id)
                .ok_or_else(|| repo::RepoError::Index(format!("bad forgotten id {id}")))?;
            out.push((instance, id, parent));
        }
        Ok(out)
    }
}
