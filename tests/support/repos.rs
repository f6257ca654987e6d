//! Opening test repositories: local, in memory, or on the test S3 server.

use std::path::Path;
use std::sync::Arc;

use cairn::catalog::Catalog;
use cairn::repo::{InitOptions, KdfParams, Repository};
use cairn::store::{Location, S3Options, Store};

pub const PASSWORD: &[u8] = b"correct horse battery staple";

/// Init options with a fast key derivation (tests open many repositories).
pub fn fast_init(encrypted: bool) -> InitOptions {
    let mut o = if encrypted {
        InitOptions::encrypted(PASSWORD)
    } else {
        InitOptions::unencrypted()
    };
    o.kdf = KdfParams::insecure_fast();
    o
}

/// A repository with its catalog in `work/catalog.sqlite`.
pub struct TestRepo {
    pub repo: Repository,
    pub catalog: Arc<Catalog>,
}

impl TestRepo {
    pub fn open_catalog(repo: Repository, work: &Path) -> TestRepo {
        let catalog = Arc::new(Catalog::open(&work.join("catalog.sqlite")).unwrap());
        catalog.refresh(&repo).unwrap();
        TestRepo { repo, catalog }
    }

    /// Initializes an encrypted repository in `work/repo`.
    pub fn local(work: &Path) -> TestRepo {
        let store = Store::open(&Location::Local(work.join("repo"))).unwrap();
        let repo = Repository::init(store, &fast_init(true)).unwrap();
        TestRepo::open_catalog(repo, work)
    }

    /// Reopens the repository in `work/repo` with a fresh handle (same catalog file).
    pub fn reopen_local(work: &Path) -> TestRepo {
        let store = Store::open(&Location::Local(work.join("repo"))).unwrap();
        let repo = Repository::open(store, Some(PASSWORD)).unwrap();
        TestRepo::open_catalog(repo, work)
    }

    /// Initializes an encrypted repository under a fresh prefix of the test S3 bucket,
    /// or returns `None` outside CI when no S3 server can be had.
    pub fn s3(work: &Path, tag: &str) -> Option<TestRepo> {
        let store = s3_store(tag)?;
        let repo = Repository::init(store, &fast_init(true)).unwrap();
        Some(TestRepo::open_catalog(repo, work))
    }
}

/// A second, independent handle on the repository in `store` (another machine), with its
/// own catalog in `work/catalog.sqlite`.
pub fn second_machine(store: &Store, work: &Path) -> TestRepo {
    let repo = Repository::open(
        Store::from_object_store(store.object_store(), "second".into()).unwrap(),
        Some(PASSWORD),
    )
    .unwrap();
    std::fs::create_dir_all(work).unwrap();
    TestRepo::open_catalog(repo, work)
}

/// A store on a fresh prefix of the test bucket.
pub fn s3_store(tag: &str) -> Option<Store> {
    let env = super::s3::s3_env()?;
    let location = Location::parse(&format!(
        "s3://{}/{}",
        env.bucket,
        super::s3::unique_prefix(tag)
    ))
    .unwrap()
    .with_s3_options(S3Options {
        endpoint: Some(env.endpoint.clone()),
        region: Some("us-east-1".into()),
        access_key_id: Some(env.key.clone()),
        secret_access_key: Some(env.secret.clone()),
    });
    Some(Store::open(&location).unwrap())
}
