//! Turning errors into a message, a hint at what to do next, and an exit code.

use std::fmt;
use std::process::ExitCode;

use cairn::catalog::CatalogError;
use cairn::engine::EngineError;
use cairn::repo::RepoError;
use cairn::store::StoreError;

use crate::stderr_note::note;

/// A mistake in how cairn was invoked or configured (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds a usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// A failure that carries its own exit code and hint: a request the daemon refused
/// (2), a job that failed (1), a job given up on after Ctrl-C (130).
#[derive(Debug)]
pub struct Coded {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// Builds a [`Coded`] error.
pub fn coded(code: u8, message: impl Into<String>, hint: Option<String>) -> anyhow::Error {
    Coded {
        code,
        message: message.into(),
        hint,
    }
    .into()
}

/// What kind of failure an error is, as far as the person running cairn cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Usage,
    BadLocation,
    NotARepository,
    AlreadyExists,
    UnsupportedVersion,
    WrongPassword,
    PasswordRequired,
    InvalidRequest,
    NoSuchPoint,
    CatalogTooNew,
    CatalogUnusable,
    Damaged,
    KeysOrConfig,
    Storage,
    Cancelled,
    Other,
}

impl Kind {
    fn exit_code(self) -> u8 {
        match self {
            Kind::Usage
            | Kind::BadLocation
            | Kind::NotARepository
            | Kind::AlreadyExists
            | Kind::UnsupportedVersion
            | Kind::WrongPassword
            | Kind::PasswordRequired
            | Kind::InvalidRequest
            | Kind::NoSuchPoint => 2,
            Kind::Cancelled => 130,
            Kind::CatalogTooNew
            | Kind::CatalogUnusable
            | Kind::Damaged
            | Kind::KeysOrConfig
            | Kind::Storage
            | Kind::Other => 1,
        }
    }

    fn hint(self) -> Option<&'static str> {
        Some(match self {
            Kind::BadLocation => {
                "a repository is a path, file:///ABS/PATH, s3://BUCKET/PREFIX, \
                 gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"
            }
            Kind::NotARepository => {
                "check --repo (or CAIRN_REPO); `cairn init REPO` creates a repository"
            }
            Kind::AlreadyExists => {
                "pick another location, or use the existing repository with --repo"
            }
            Kind::UnsupportedVersion => {
                "a newer cairn wrote this repository: upgrade cairn to read it"
            }
            Kind::WrongPassword => {
                "check the password given by --password-file, CAIRN_PASSWORD or the prompt"
            }
            Kind::PasswordRequired => {
                "set CAIRN_PASSWORD, pass --password-file FILE, or run in a terminal to be asked"
            }
            Kind::NoSuchPoint => "`cairn points INSTANCE --repo REPO` lists the points",
            Kind::CatalogTooNew => {
                "the catalog is only a cache: remove that file (or set CAIRN_CACHE_DIR \
                 elsewhere) and run `cairn catalog rebuild REPO`"
            }
            Kind::CatalogUnusable => {
                "the catalog is only a cache: make its directory writable (or point \
                 CAIRN_CACHE_DIR elsewhere), or remove it and run `cairn catalog rebuild REPO`"
            }
            Kind::Damaged => {
                "`cairn verify --repo REPO --read-data` names the damaged points and files"
            }
            Kind::KeysOrConfig => {
                "`config` and `keys/` are written once by `cairn init` and never change: \
                 restore them from a copy of the repository"
            }
            Kind::Storage => {
                "check that the storage is reachable and the credentials (AWS_*, --s3-*) are right"
            }
            Kind::Usage | Kind::InvalidRequest | Kind::Cancelled | Kind::Other => return None,
        })
    }
}

fn store_kind(e: &StoreError) -> Kind {
    match e {
        StoreError::Location { .. } => Kind::BadLocation,
        StoreError::Backend { .. }
        | StoreError::Runtime(_)
        | StoreError::Injected(_)
        | StoreError::Sync { .. } => Kind::Storage,
        StoreError::NotFound(_) | StoreError::AlreadyExists(_) => Kind::Other,
    }
}

fn repo_kind(e: &RepoError) -> Kind {
    match e {
        RepoError::Store(s) => store_kind(s),
        RepoError::NotARepository(_) => Kind::NotARepository,
        RepoError::AlreadyExists(_) => Kind::AlreadyExists,
        RepoError::UnsupportedVersion(_) => Kind::UnsupportedVersion,
        RepoError::WrongPassword => Kind::WrongPassword,
        RepoError::PasswordRequired => Kind::PasswordRequired,
        RepoError::Authentication
        | RepoError::CorruptBlob { .. }
        | RepoError::MissingBlob(_)
        | RepoError::Format(_) => Kind::Damaged,
        RepoError::ConfigAltered(_) | RepoError::KeyMissing(_) | RepoError::KeyDamaged(_) => {
            Kind::KeysOrConfig
        }
        RepoError::Index(_) | RepoError::Busy(_) => Kind::Other,
    }
}

fn catalog_kind(e: &CatalogError) -> Kind {
    match e {
        CatalogError::Repo(r) => repo_kind(r),
        CatalogError::Store(s) => store_kind(s),
        CatalogError::TooNew { .. } => Kind::CatalogTooNew,
        CatalogError::Model(_) => Kind::Damaged,
        CatalogError::Sqlite { .. } | CatalogError::Dir { .. } => Kind::CatalogUnusable,
        CatalogError::DiskFull { .. } => Kind::Other,
        CatalogError::Downgraded { .. } => Kind::KeysOrConfig,
    }
}

fn engine_kind(e: &EngineError) -> Kind {
    match e {
        EngineError::Repo(r) => repo_kind(r),
        EngineError::Catalog(c) => catalog_kind(c),
        EngineError::Model(_) | EngineError::MarkedDamaged { .. } => Kind::Damaged,
        EngineError::Invalid(_)
        | EngineError::NoFreeName(_)
        | EngineError::UnreadablePoints(_)
        | EngineError::Threads(_)
        | EngineError::SwapBack { .. }
        | EngineError::Damage(_)
        | EngineError::LogGap { .. } => Kind::InvalidRequest,
        EngineError::NoSuchPoint { .. } => Kind::NoSuchPoint,
        EngineError::Cancelled => Kind::Cancelled,
        EngineError::Io { .. } | EngineError::StreamFailed { .. } => Kind::Other,
    }
}

fn kind(err: &anyhow::Error) -> Kind {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return Kind::Usage;
        }
        if let Some(e) = cause.downcast_ref::<EngineError>() {
            return engine_kind(e);
        }
        if let Some(e) = cause.downcast_ref::<CatalogError>() {
            return catalog_kind(e);
        }
        if let Some(e) = cause.downcast_ref::<RepoError>() {
            return repo_kind(e);
        }
        if let Some(e) = cause.downcast_ref::<StoreError>() {
            return store_kind(e);
        }
    }
    Kind::Other
}

/// The error and its causes on one line. Library errors often repeat their source in
/// their own message; a cause already said is not said again.
fn message(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Prints the error (with its causes and a hint) to stderr; returns the exit code.
/// `verify` exits 2 on any error, keeping 1 for "damage found".
pub fn report(err: &anyhow::Error, is_verify: bool) -> ExitCode {
    if let Some(c) = err.chain().find_map(|c| c.downcast_ref::<Coded>()) {
        note!("cairn: error: {}", message(err));
        if let Some(hint) = &c.hint {
            note!("hint: {hint}");
        }
        return ExitCode::from(c.code);
    }
    let kind = kind(err);
    if kind == Kind::Cancelled {
        note!("cairn: cancelled");
        return ExitCode::from(130);
    }
    note!("cairn: error: {}", message(err));
    if let Some(hint) = kind.hint() {
        note!("hint: {hint}");
    }
    ExitCode::from(if is_verify { 2 } else { kind.exit_code() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_library_errors_are_classified() {
        let e = anyhow::Error::from(EngineError::Repo(RepoError::WrongPassword))
            .context("opening the repository");
        assert_eq!(kind(&e), Kind::WrongPassword);
        assert_eq!(Kind::WrongPassword.exit_code(), 2);
        let e = anyhow::Error::from(EngineError::Cancelled);
        assert_eq!(kind(&e), Kind::Cancelled);
        let e = usage("no password").context("init");
        assert_eq!(kind(&e), Kind::Usage);
        let e = anyhow::anyhow!("something else");
        assert_eq!(kind(&e), Kind::Other);
        assert_eq!(Kind::Other.exit_code(), 1);
    }

    #[test]
    fn a_cause_the_message_already_contains_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::from(EngineError::io("reading source", "/x", io))
            .context("snapshot failed");
        assert_eq!(message(&e), "snapshot failed: reading source /x: gone");
    }
}
