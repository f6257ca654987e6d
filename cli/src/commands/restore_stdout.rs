//! `cairn restore INSTANCE POINT --stdout NAME`: one regular file at the top of a point
//! (a command's output, a `--stdin` stream) to stdout, like restic's `dump`: through a
//! mount by reading `<mnt>/<instance>/<point>/<NAME>`, with `--repo` through the engine.

use std::io::Write;

use anyhow::{Context, Result};

use cairn::engine;
use cairn::model::instance::check_stream_name;

use super::restore::RestoreArgs;
use super::{Invocation, Status};
use crate::client::Target;
use crate::failure::usage;
use crate::repo_args;

pub fn run(inv: &Invocation<'_>, args: &RestoreArgs, name: &str) -> Result<Status> {
    check_stream_name(name).map_err(usage)?;
    let what = format!("{}/{}/{name}", args.instance, args.point);
    let mut out = std::io::stdout().lock();
    match args.target.resolve()? {
        Target::Repo(repo) => {
            let (repo, catalog) = repo_args::open_direct(inv.global, &repo, args.job.no_wait)?;
            engine::dump_file(&repo, &catalog, &args.instance, &args.point, name, &mut out)
                .with_context(|| format!("cannot write {what} to stdout"))?;
        }
        Target::Mount(client) => {
            let path = client.dir.join(&args.instance).join(&args.point).join(name);
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
