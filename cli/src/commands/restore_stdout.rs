//! `cairn restore INSTANCE POINT --stdout NAME`: one regular file at the top of a point
//! (a command's output, a `--stdin` stream) to stdout, like restic's `dump`: through a
//! mount by reading `<mnt>/<instance>/<point>/<NAME>`, with `--repo` through the engine.

use std::io::Write;

use anyhow::{Context, Result};

use cairn::engine;
use cairn::model::instance::check_stream_name;

use super::{Invocation, Status};
use crate::client::{Target, TargetArgs};
use crate::failure::usage;
use crate::repo_args;

/// Which file of which point, and where the repository is.
pub struct StdoutRequest<'a> {
    pub instance: &'a str,
    pub point: &'a str,
    pub name: &'a str,
    pub target: &'a TargetArgs,
    pub no_wait: bool,
}

pub fn run(inv: &Invocation<'_>, req: &StdoutRequest<'_>) -> Result<Status> {
    let (instance, point, name) = (req.instance, req.point, req.name);
    check_stream_name(name).map_err(usage)?;
    let what = format!("{instance}/{point}/{name}");
    let mut out = std::io::stdout().lock();
    match req.target.resolve()? {
        Target::Repo(repo) => {
            let (repo, catalog) = repo_args::open_for_engine(inv.global, &repo, req.no_wait)?;
            engine::dump_file(&repo, &catalog, instance, point, name, &mut out)
                .with_context(|| format!("cannot write {what} to stdout"))?;
        }
        Target::Mount(client) => {
            let path = client.dir.join(instance).join(point).join(name);
            let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            if !is_file {
                return Err(usage(format!(
                    "{what}: no regular file `{name}` at the top of the point ({} is not one)",
                    path.display()
                )));
            }
            let mut file =
                std::fs::File::open(&path).with_context(|| format!("cannot open {what}"))?;
            std::io::copy(&mut file, &mut out)
                .and_then(|_| out.flush())
                .with_context(|| format!("cannot write {what} to stdout"))?;
        }
    }
    Ok(Status::Success)
}
