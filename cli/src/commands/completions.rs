//! `cairn completions SHELL`: the shell's completion script for cairn (clap_complete),
//! printed to stdout.

use anyhow::Result;
use clap::Args;
use clap_complete::Shell;

use super::Status;

#[derive(Args, Debug)]
#[command(after_help = "Install, e.g.:\n  \
    bash: cairn completions bash > ~/.local/share/bash-completion/completions/cairn\n  \
    zsh:  cairn completions zsh > ~/.zfunc/_cairn   (with fpath+=~/.zfunc before compinit)\n  \
    fish: cairn completions fish > ~/.config/fish/completions/cairn.fish")]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// Prints the completion script of `cli` (the whole command line) for `args.shell`.
pub fn run(args: &CompletionsArgs, mut cli: clap::Command) -> Result<Status> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "cairn", &mut script);
    super::print_generated(script)
}
