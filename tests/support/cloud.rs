//! Azure and GCS endpoints for the tests: Azurite (`azurite-blob`) for `az://` and
//! fake-gcs-server for `gs://`, started once per run by `scripts/test.sh` and passed in
//! `CAIRN_TEST_AZURE_URL`/`CAIRN_TEST_AZURE_CONTAINER` and
//! `CAIRN_TEST_GCS_URL`/`CAIRN_TEST_GCS_BUCKET`. Without them a test says loudly that it
//! is skipped; with `CI=true` a missing server is a failure. Tests share the container
//! and the bucket: give each its own [`unique_prefix`](super::s3::unique_prefix).

use std::io::Write;
use std::sync::{Arc, OnceLock};

use cairn::store::Store;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::prefix::PrefixStore;

use super::s3::unique_prefix;

/// Azurite's well-known development account and key (the same in every installation).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// One emulator: its base URL and the container or bucket the tests use.
pub struct Emulator {
    pub url: String,
    pub bucket: String,
}

fn from_env(url_var: &str, bucket_var: &str, what: &str) -> Option<&'static Emulator> {
    let url = std::env::var(url_var).ok().filter(|u| !u.is_empty());
    let bucket = std::env::var(bucket_var).unwrap_or_else(|_| "cairn-test".into());
    match url {
        Some(url) => Some(Box::leak(Box::new(Emulator { url, bucket }))),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and no {what} for the tests: {url_var} is not set (scripts/test.sh starts one)")
        }
        None => {
            // Not eprintln!: the test harness would capture it.
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! WARNING: no {what} ({url_var} unset): its tests are SKIPPED. Run scripts/test.sh.\n"
            );
            None
        }
    }
}

/// Azurite, or `None` outside CI when there is none.
pub fn azurite() -> Option<&'static Emulator> {
    static ENV: OnceLock<Option<&'static Emulator>> = OnceLock::new();
    *ENV.get_or_init(|| {
        from_env(
            "CAIRN_TEST_AZURE_URL",
            "CAIRN_TEST_AZURE_CONTAINER",
            "Azurite",
        )
    })
}

/// fake-gcs-server, or `None` outside CI when there is none.
pub fn fake_gcs() -> Option<&'static Emulator> {
    static ENV: OnceLock<Option<&'static Emulator>> = OnceLock::new();
    *ENV.get_or_init(|| {
        from_env(
            "CAIRN_TEST_GCS_URL",
            "CAIRN_TEST_GCS_BUCKET",
            "fake-gcs-server",
        )
    })
}

/// The variables that point `cairn` (and `object_store`) at Azurite, as README says.
pub fn azurite_vars(env: &Emulator) -> Vec<(String, String)> {
    vec![
        ("AZURE_STORAGE_USE_EMULATOR".into(), "true".into()),
        ("AZURITE_BLOB_STORAGE_URL".into(), env.url.clone()),
    ]
}

/// A service account key that turns OAuth off: requests carry an empty bearer token, and
/// nothing asks a metadata server for one. (`GOOGLE_SKIP_SIGNATURE` is not enough:
/// object_store 0.14 still fetches a token for uploads.)
pub const NO_OAUTH_KEY: &str =
    r#"{"disable_oauth":true,"client_email":"","private_key":"","private_key_id":""}"#;

/// The variables that point `cairn` at fake-gcs-server, as README says.
pub fn fake_gcs_vars(env: &Emulator) -> Vec<(String, String)> {
    vec![
        ("GOOGLE_BASE_URL".into(), env.url.clone()),
        ("GOOGLE_SERVICE_ACCOUNT_KEY".into(), NO_OAUTH_KEY.into()),
    ]
}

/// A store on a fresh prefix of the Azurite container. Built here, not from the
/// variables above: tests must not change the environment of their own process.
pub fn azure_store(tag: &str) -> Option<Store> {
    let env = azurite()?;
    let az = MicrosoftAzureBuilder::new()
        .with_account(AZURITE_ACCOUNT)
        .with_access_key(AZURITE_KEY)
        .with_endpoint(format!("{}/{AZURITE_ACCOUNT}", env.url))
        .with_allow_http(true)
        .with_container_name(&env.bucket)
        .build()
        .unwrap();
    let prefix = unique_prefix(tag);
    let description = format!("az://{}/{prefix}", env.bucket);
    Some(Store::from_object_store(Arc::new(PrefixStore::new(az, prefix)), description).unwrap())
}

/// A store on a fresh prefix of the fake-gcs-server bucket.
pub fn gcs_store(tag: &str) -> Option<Store> {
    let env = fake_gcs()?;
    Some(gcs_store_at(env, &unique_prefix(tag)))
}

/// A store on `prefix` of the fake-gcs-server bucket.
pub fn gcs_store_at(env: &Emulator, prefix: &str) -> Store {
    let gcs = GoogleCloudStorageBuilder::new()
        .with_base_url(&env.url)
        .with_service_account_key(NO_OAUTH_KEY)
        .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
        .with_bucket_name(&env.bucket)
        .build()
        .unwrap();
    let description = format!("gs://{}/{prefix}", env.bucket);
    Store::from_object_store(Arc::new(PrefixStore::new(gcs, prefix)), description).unwrap()
}
