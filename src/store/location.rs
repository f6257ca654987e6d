//! Repository locations: a path, `file://`, `memory://`, `s3://`, `gs://` or `az://`.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, RetryConfig};

use super::{Result, StoreError};

/// Overrides for S3 settings that otherwise come from the usual `AWS_*` variables.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// object_store's own retries on S3 (of requests that got no reply, or a 5xx): few and quick,
/// since the store retries each whole operation again on top ([`super::RetryPolicy`]);
/// its defaults (10 retries within 3 minutes) let a store that is down hang a job for
/// minutes per request.
fn client_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(30),
        ..RetryConfig::default()
    }
}

/// Where a repository lives.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Memory,
    S3 {
        bucket: String,
        prefix: String,
        options: S3Options,
    },
    Gcs {
        bucket: String,
        prefix: String,
    },
    Azure {
        url: String,
        prefix: String,
    },
}

fn split_bucket(rest: &str) -> (String, String) {
    let rest = rest.trim_end_matches('/');
    match rest.split_once('/') {
        Some((bucket, prefix)) => (bucket.to_string(), prefix.trim_matches('/').to_string()),
        None => (rest.to_string(), String::new()),
    }
}

/// The scheme of a relative path whose first component reads like `scheme:...` (a typo
/// of `s3://`, `gs://`, or an scp-style `host:path`), which must not become a directory.
fn url_like_scheme(text: &str) -> Option<&str> {
    let first = text.split('/').next()?;
    let (scheme, _) = first.split_once(':')?;
    let mut chars = scheme.chars();
    let starts_alpha = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (starts_alpha && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c)))
        .then_some(scheme)
}

impl Location {
    /// Parses a repository argument as a user typed it.
    pub fn parse(text: &str) -> Result<Location> {
        let bad = |reason: &str| StoreError::Location {
            location: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(bad("empty location"));
        }
        if let Some(rest) = text.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("file:// needs an absolute path"));
            }
            return Ok(Location::Local(PathBuf::from(rest)));
        }
        if text == "memory://" {
            return Ok(Location::Memory);
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = split_bucket(rest);
            if bucket.is_empty() {
                return Err(bad("s3:// needs a bucket: s3://BUCKET/PREFIX"));
            }
            return Ok(Location::S3 {
                bucket,
                prefix,
                options: S3Options::default(),
            });
        }
        if let Some(rest) = text.strip_prefix("gs://") {
            let (bucket, prefix) = split_bucket(rest);
            if bucket.is_empty() {
                return Err(bad("gs:// needs a bucket: gs://BUCKET/PREFIX"));
            }
            return Ok(Location::Gcs { bucket, prefix });
        }
        if let Some(rest) = text.strip_prefix("az://") {
            let (container, prefix) = split_bucket(rest);
            if container.is_empty() {
                return Err(bad("az:// needs a container: az://CONTAINER/PREFIX"));
            }
            return Ok(Location::Azure {
                url: format!("az://{container}"),
                prefix,
            });
        }
        if text.contains("://") {
            return Err(bad(
                "unknown scheme; use a path, file://, s3://, gs:// or az://",
            ));
        }
        if let Some(scheme) = url_like_scheme(text) {
            return Err(bad(&format!(
                "`{scheme}:` looks like a URL scheme (did you mean {scheme}://...?); \
                 write ./{text} for a local directory of that name"
            )));
        }
        let path = PathBuf::from(text);
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map_err(|e| bad(&format!("cannot resolve relative path: {e}")))?
                .join(path)
        };
        Ok(Location::Local(path))
    }

    /// Applies S3 overrides (flags) to an `s3://` location; other kinds ignore them.
    pub fn with_s3_options(mut self, new: S3Options) -> Location {
        if let Location::S3 { options, .. } = &mut self {
            *options = new;
        }
        self
    }

    pub(super) fn build(&self) -> Result<(Arc<dyn ObjectStore>, String)> {
        let backend = |e: object_store::Error| StoreError::Backend {
            key: String::new(),
            source: e,
        };
        let with_prefix = |store: Arc<dyn ObjectStore>, prefix: &str| -> Arc<dyn ObjectStore> {
            if prefix.is_empty() {
                store
            } else {
                Arc::new(PrefixStore::new(store, prefix))
            }
        };
        match self {
            Location::Local(path) => {
                std::fs::create_dir_all(path).map_err(|e| StoreError::Location {
                    location: path.display().to_string(),
                    reason: format!("cannot create directory: {e}"),
                })?;
                let fs = LocalFileSystem::new_with_prefix(path).map_err(backend)?;
                Ok((Arc::new(fs), path.display().to_string()))
            }
            Location::Memory => Ok((Arc::new(InMemory::new()), "memory://".into())),
            Location::S3 {
                bucket,
                prefix,
                options,
            } => {
                let mut b = AmazonS3Builder::from_env()
                    .with_retry(client_retries())
                    .with_bucket_name(bucket)
                    .with_virtual_hosted_style_request(false);
                if let Some(endpoint) = options
                    .endpoint
                    .clone()
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
                {
                    b = b
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint);
                }
                if let Some(region) = &options.region {
                    b = b.with_region(region);
                }
                if let Some(key) = &options.access_key_id {
                    b = b.with_access_key_id(key);
                }
                if let Some(secret) = &options.secret_access_key {
                    b = b.with_secret_access_key(secret);
                }
                let s3 = b.build().map_err(backend)?;
                Ok((
                    with_prefix(Arc::new(s3), prefix),
                    format!("s3://{bucket}/{prefix}"),
                ))
            }
            Location::Gcs { bucket, prefix } => {
                let gcs = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(bucket)
                    .build()
                    .map_err(backend)?;
                Ok((
                    with_prefix(Arc::new(gcs), prefix),
                    format!("gs://{bucket}/{prefix}"),
                ))
            }
            Location::Azure { url, prefix } => {
                let mut b = MicrosoftAzureBuilder::from_env().with_url(url.clone());
                // A plain-http endpoint is allowed, as for S3 (the emulator switch does this
                // itself).
                if b.get_config_value(&AzureConfigKey::Endpoint)
                    .is_some_and(|url| url.starts_with("http://"))
                {
                    b = b.with_allow_http(true);
                }
                let az = b.build().map_err(backend)?;
                Ok((with_prefix(Arc::new(az), prefix), format!("{url}/{prefix}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert!(
            matches!(Location::parse("/srv/repo").unwrap(), Location::Local(p) if p.as_path() == std::path::Path::new("/srv/repo"))
        );
        assert!(
            matches!(Location::parse("file:///srv/repo").unwrap(), Location::Local(p) if p.as_path() == std::path::Path::new("/srv/repo"))
        );
        match Location::parse("s3://bkt/a/b/").unwrap() {
            Location::S3 { bucket, prefix, .. } => {
                assert_eq!(bucket, "bkt");
                assert_eq!(prefix, "a/b");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(Location::parse("gs://b").unwrap(), Location::Gcs { bucket, prefix } if bucket == "b" && prefix.is_empty())
        );
        assert!(
            matches!(Location::parse("az://c/p").unwrap(), Location::Azure { url, prefix } if url == "az://c" && prefix == "p")
        );
    }

    #[test]
    fn rejects_bad_locations() {
        for bad in ["", "s3://", "ftp://x/y", "file://relative"] {
            assert!(Location::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn refuses_scheme_typos_but_not_explicit_paths() {
        for typo in [
            "s3:/bucket/x",
            "s3:bucket/x",
            "gs:b",
            "az:/c",
            "host:path",
            "S3:x",
        ] {
            let err = Location::parse(typo).expect_err(typo).to_string();
            assert!(err.contains("looks like a URL scheme"), "{typo}: {err}");
            assert!(err.contains(&format!("./{typo}")), "{typo}: {err}");
        }
        for fine in ["./s3:bucket/x", "/tmp/s3:x", "repo", "a/s3:x", ":x", "1a:b"] {
            assert!(
                matches!(Location::parse(fine), Ok(Location::Local(_))),
                "{fine} refused"
            );
        }
    }
}
