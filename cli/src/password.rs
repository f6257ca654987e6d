//! Where a repository password comes from: `--password-file`, then `CAIRN_PASSWORD`, then
//! a prompt on the terminal (only when stdin is one).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result};

use crate::failure::usage;

pub const ENV: &str = "CAIRN_PASSWORD";

const HOW: &str = "set CAIRN_PASSWORD, pass --password-file FILE, or run cairn in a terminal \
                   to be asked";

/// The password given without asking: from `password_file`, else `CAIRN_PASSWORD`.
pub fn supplied(password_file: Option<&Path>) -> Result<Option<Vec<u8>>> {
    supplied_from(password_file, ENV)
}

/// The password given without asking: from `password_file`, else the variable `env`
/// (another repository's password: `CAIRN_TO_PASSWORD`, `CAIRN_LIKE_PASSWORD`).
pub fn supplied_from(password_file: Option<&Path>, env: &str) -> Result<Option<Vec<u8>>> {
    if let Some(path) = password_file {
        let mut bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the password file {}", path.display()))?;
        // One trailing line break is the file's, not the password's.
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        if bytes.is_empty() {
            return Err(usage(format!(
                "the password file {} is empty",
                path.display()
            )));
        }
        return Ok(Some(bytes));
    }
    match std::env::var_os(env) {
        Some(v) if v.is_empty() => Err(usage(format!("{env} is set but empty"))),
        Some(v) => Ok(Some(
            std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec(),
        )),
        None => Ok(None),
    }
}

fn require_terminal(what: &str) -> Result<()> {
    if std::io::stdin().is_terminal() {
        Ok(())
    } else {
        Err(usage(format!(
            "{what}, and stdin is not a terminal to ask for one: {HOW}"
        )))
    }
}

fn prompt(text: &str) -> Result<Vec<u8>> {
    let pw = match crate::interrupt::while_prompting(|| rpassword::prompt_password(text)) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(usage("no password was typed (end of input)"))
        }
        other => other.context("cannot read the password from the terminal")?,
    };
    if pw.is_empty() {
        return Err(usage("the password is empty"));
    }
    Ok(pw.into_bytes())
}

/// The password of a repository being created: supplied, or asked for twice.
pub fn for_new_repository(password_file: Option<&Path>) -> Result<Vec<u8>> {
    if let Some(pw) = supplied(password_file)? {
        return Ok(pw);
    }
    require_terminal("a new encrypted repository needs a password (or --no-encryption)")?;
    let first = prompt("password for the new repository: ")?;
    let second = prompt("the same password again: ")?;
    if first != second {
        return Err(usage("the two passwords differ; no repository was created"));
    }
    Ok(first)
}

/// Asks for the password of an existing encrypted repository.
pub fn ask_existing(location: &str, attempt: u32) -> Result<Vec<u8>> {
    require_terminal(&format!(
        "the repository at {location} is encrypted and no password was given"
    ))?;
    let text = if attempt == 0 {
        format!("password for {location}: ")
    } else {
        "wrong password, try again: ".to_string()
    };
    prompt(&text)
}

/// Whether a password can be asked for interactively.
pub fn can_ask() -> bool {
    std::io::stdin().is_terminal()
}
