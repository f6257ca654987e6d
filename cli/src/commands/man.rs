//! `cairn man [COMMAND...]`: the man page (roff, by clap_mangen) of cairn or of one of its
//! commands, printed to stdout, e.g. `cairn man > cairn.1`, `cairn man instance add >
//! cairn-instance-add.1`.

use anyhow::Result;
use clap::Args;

use super::Status;
use crate::failure::usage;

#[derive(Args, Debug)]
pub struct ManArgs {
    /// The command whose page to print (e.g. `snapshot`, `instance add`: the pages that
    /// cairn's page lists as cairn-snapshot(1), cairn-instance-add(1)); cairn's own page
    /// without one.
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Prints the man page of `cli` (the whole command line), or of the command named in
/// `args` under it.
pub fn run(args: &ManArgs, cli: clap::Command) -> Result<Status> {
    // Built, every command knows its full name (cairn-instance-add); `help` is no command
    // of its own in a man page.
    let mut page_of = cli.disable_help_subcommand(true);
    page_of.build();
    for (depth, name) in args.command.iter().enumerate() {
        page_of = page_of
            .find_subcommand(name)
            .filter(|c| !c.is_hide_set())
            .cloned()
            .ok_or_else(|| {
                usage(format!(
                    "`cairn {}` is not a command; `cairn --help` lists them",
                    args.command[..=depth].join(" ")
                ))
            })?;
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(page_of)
        .source(concat!("cairn ", env!("CARGO_PKG_VERSION")))
        .render(&mut page)?;
    super::print_generated(page)
}
