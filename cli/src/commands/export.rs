//! `cairn export INSTANCE [POINT]`: a point as a tar stream on stdout (or `--output
//! FILE`), `--format tar.zst` compressed. With `--repo` through the engine (`--include`
//! selects); through a mount by reading its virtual file `<mnt>/<instance>/<point>.tar`,
//! which holds the same bytes.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use cairn::engine::{self, ExportError, ExportFormat, ExportRequest};

use super::{Invocation, Status};
use crate::client::{Target, TargetArgs};
use crate::failure::usage;
use crate::repo_args;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A tar stream (GNU/PAX: sparse files, xattrs, nanosecond times).
    Tar,
    /// The same tar stream, compressed with zstd.
    #[value(name = "tar.zst")]
    TarZst,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The instance to export from.
    pub instance: String,
    /// The point: its name, or `latest` [default: latest].
    pub point: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Export only paths matching GLOB, relative to the point root, with the directories
    /// above them (as `restore --include`; repeatable; with --repo only).
    #[arg(long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,
    /// The archive's format.
    #[arg(long, value_enum, default_value_t = Format::Tar)]
    pub format: Format,
    /// Write the archive to FILE instead of stdout (a regular FILE is removed again if the
    /// export fails).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

pub fn run(inv: &Invocation<'_>, args: &ExportArgs) -> Result<Status> {
    let point = args.point.as_deref().unwrap_or("latest");
    let what = format!("{}/{point}", args.instance);
    let target = args.target.resolve()?;
    if matches!(target, Target::Mount(_)) && !args.includes.is_empty() {
        return Err(usage(
            "--include works with --repo: through a mount the whole point is exported \
             (its file <mount>/<instance>/<point>.tar)",
        ));
    }
    let (removable, out): (Option<&Path>, Box<dyn Write>) = match &args.output {
        Some(path) => {
            let f =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            // Only a regular file is removed again on failure (never /dev/null or a FIFO).
            let regular = f.metadata().is_ok_and(|m| m.is_file());
            (regular.then_some(path), Box::new(f))
        }
        None if std::io::stdout().is_terminal() => {
            return Err(usage(
                "stdout is a terminal: redirect it (`> point.tar`, `| tar -t`) or give \
                 --output FILE",
            ))
        }
        None => {
            let fd = std::os::fd::AsFd::as_fd(&std::io::stdout())
                .try_clone_to_owned()
                .context("cannot use stdout")?;
            (None, Box::new(File::from(fd)))
        }
    };
    let mut out = Counted {
        inner: BufWriter::with_capacity(1 << 20, out),
        bytes: 0,
    };
    let result = match target {
        Target::Repo(repo) => {
            let (repo, catalog) = repo_args::open_for_engine(inv.global, &repo, false)?;
            let req = ExportRequest {
                instance: args.instance.clone(),
                point: point.to_string(),
                includes: args.includes.clone(),
                format: match args.format {
                    Format::Tar => ExportFormat::Tar,
                    Format::TarZst => ExportFormat::TarZst,
                },
            };
            let _armed = inv.interrupts.arm();
            engine::export(&repo, &catalog, &req, &mut out, inv.interrupts.token())
                .map(|o| format!("{} entries, {} bytes of tar", o.entries, o.bytes))
                .map_err(|e| export_error(e, &what))
        }
        Target::Mount(client) => {
            let path = client.dir.join(&args.instance).join(format!("{point}.tar"));
            copy_file(&path, args.format, &mut out, &what)
        }
    }
    .and_then(|summary| {
        out.flush()
            .with_context(|| format!("cannot write the archive of {what}"))?;
        Ok(summary)
    });
    match (result, removable, &args.output) {
        (Ok(summary), _, Some(path)) => {
            eprintln!("exported {what} to {}: {summary}", path.display());
            Ok(Status::Success)
        }
        (Ok(_), _, None) => Ok(Status::Success),
        (Err(e), Some(path), _) => {
            drop(out);
            let _ = std::fs::remove_file(path);
            Err(e.context(format!("{} removed", path.display())))
        }
        (Err(e), _, _) if out.bytes == 0 => Err(e),
        (Err(e), None, Some(path)) => {
            Err(e.context(format!("the archive in {} is cut short", path.display())))
        }
        (Err(e), None, None) => Err(e.context("the archive on stdout is cut short")),
    }
}

/// The engine's error with what it is about, its kind (exit code) kept.
fn export_error(e: ExportError, what: &str) -> anyhow::Error {
    match e {
        ExportError::Engine(e) => anyhow::Error::from(e).context(format!("cannot export {what}")),
        ExportError::File { path, source } => {
            anyhow::Error::from(*source).context(format!("cannot export {what}: file {path}"))
        }
        ExportError::Write(e) => {
            anyhow::Error::from(e).context(format!("cannot write the archive of {what}"))
        }
    }
}

/// Copies the mount's virtual archive file to `out`, compressed for `tar.zst`.
fn copy_file(path: &Path, format: Format, out: &mut dyn Write, what: &str) -> Result<String> {
    let mut file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => usage(format!(
            "{what}: no such instance or point in the mount ({} does not exist)",
            path.display()
        )),
        _ => anyhow::Error::from(e).context(format!("cannot open {}", path.display())),
    })?;
    let bytes = match format {
        Format::Tar => copy(&mut file, out, path, what)?,
        Format::TarZst => {
            let mut z = zstd::Encoder::new(out, 3)?;
            let n = copy(&mut file, &mut z, path, what)?;
            z.finish()?;
            n
        }
    };
    Ok(format!("{bytes} bytes of tar"))
}

/// Copies in reads of 1 MiB (fewer requests to the mount than `io::copy`'s 8 KiB).
fn copy(file: &mut File, out: &mut dyn Write, path: &Path, what: &str) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context(format!("cannot export {what} (reading {})", path.display())))
            }
        };
        out.write_all(&buf[..n])
            .with_context(|| format!("cannot write the archive of {what}"))?;
        total += n as u64;
    }
}

/// The output, counting what was handed to it (an error before any byte cut nothing).
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
