//! `cairn completions SHELL` and `cairn man`: what the binary prints about itself for
//! shells and for man, and the usage errors around them.

use std::process::Command;

use crate::support::cli_run::{cairn_bin, Run};

/// The commands a person runs (the mount daemon's internal watcher is not one).
const COMMANDS: [&str; 23] = [
    "init",
    "mount",
    "umount",
    "instance",
    "policy",
    "snapshot",
    "restore",
    "verify",
    "export",
    "check",
    "diff",
    "copy",
    "forget",
    "prune",
    "repair",
    "log",
    "points",
    "jobs",
    "events",
    "cancel",
    "catalog",
    "completions",
    "man",
];

fn cairn(args: &[&str]) -> Run {
    let out = Command::new(cairn_bin())
        .args(args)
        .env_remove("CAIRN_REPO")
        .env_remove("CAIRN_MOUNT")
        .output()
        .expect("run cairn");
    Run::from_output(format!("cairn {}", args.join(" ")), out)
}

fn bash(script: &str) -> Run {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("run bash");
    Run::from_output(format!("bash -c {script:?}"), out)
}

#[test]
fn bash_completions_are_a_script_bash_accepts_and_completes_with() {
    let run = cairn(&["completions", "bash"]).ok();
    assert!(run.stdout.contains("complete "), "{}", run.describe());
    for command in COMMANDS {
        assert!(
            run.stdout.contains(command),
            "{command}: {}",
            run.describe()
        );
    }
    assert!(
        !run.stdout.contains("__mount-watcher"),
        "{}",
        run.describe()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cairn.bash");
    std::fs::write(&file, &run.stdout).unwrap();
    let file = file.to_str().unwrap();
    bash(&format!("bash -n {file}")).ok();
    // Sourced, it completes a command's first letters and a group's commands.
    let completed = bash(&format!(
        "source {file}; COMP_WORDS=(cairn sn); COMP_CWORD=1; _cairn cairn sn cairn; \
         echo \"${{COMPREPLY[@]}}\"; \
         COMP_WORDS=(cairn instance ''); COMP_CWORD=2; _cairn cairn '' instance; \
         echo \"${{COMPREPLY[@]}}\""
    ))
    .ok();
    let lines: Vec<&str> = completed.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"snapshot"), "{}", completed.describe());
    for command in ["add", "list", "remove"] {
        assert!(
            lines
                .get(1)
                .is_some_and(|l| l.split(' ').any(|w| w == command)),
            "{command}: {}",
            completed.describe()
        );
    }
}

#[test]
fn every_shell_has_completions() {
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let run = cairn(&["completions", shell]).ok();
        for command in ["snapshot", "restore", "completions"] {
            assert!(
                run.stdout.contains(command),
                "{command}: {}",
                run.describe()
            );
        }
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    cairn(&["completions", "tcsh"])
        .code(2)
        .stderr_has("invalid value 'tcsh'")
        .stderr_has("possible values: bash, elvish, fish, powershell, zsh");
    cairn(&["completions"]).code(2).stderr_has("<SHELL>");
}

/// The page with roff's two-line preamble (the apostrophe string every clap_mangen page
/// defines first) left out.
fn page_body(page: &str) -> Vec<&str> {
    page.lines()
        .skip_while(|l| l.starts_with(".ie ") || l.starts_with(".el "))
        .collect()
}

#[test]
fn the_man_page_is_roff_naming_every_command() {
    let run = cairn(&["man"]).ok();
    let body = page_body(&run.stdout);
    assert!(
        body.first().is_some_and(|l| l.starts_with(".TH cairn 1")),
        "{}",
        run.describe()
    );
    assert!(run.stdout.contains(".SH SUBCOMMANDS"), "{}", run.describe());
    for command in COMMANDS {
        let entry = format!("cairn\\-{command}(1)");
        assert!(run.stdout.contains(&entry), "{entry}: {}", run.describe());
    }
    assert!(!run.stdout.contains("watcher"), "{}", run.describe());
}

#[test]
fn a_command_has_its_own_man_page() {
    let run = cairn(&["man", "instance", "add"]).ok();
    let body = page_body(&run.stdout);
    assert!(
        body.first()
            .is_some_and(|l| l.starts_with(".TH cairn-instance-add 1")),
        "{}",
        run.describe()
    );
    assert!(run.stdout.contains("\\-\\-path"), "{}", run.describe());
    cairn(&["man", "instance", "nosuch"])
        .code(2)
        .stderr_has("`cairn instance nosuch` is not a command");
}
