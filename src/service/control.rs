//! The parsers of the control files (`ctl/instance`, `ctl/snapshot`, `ctl/restore`,
//! `ctl/verify`, `ctl/forget`, `ctl/prune`, `ctl/cancel`): one line into its typed
//! request, each value checked (through the model's rules) before anything starts.

use crate::engine::logs::parse_pitr_time;
use crate::model::instance::{check_source_paths, check_stream_names, CommandSource, Hooks};
use crate::model::names::{is_valid_label, is_valid_new_name, MAX_NEW_NAME_LEN};

use super::grammar::{
    absolute, boolean, globs, instance_name, no_verb, parse_words, point_ref, ControlError, Fields,
    Result, Words,
};
use super::log_control::log_sources;
use super::requests::{
    ForgetControl, InstanceRequest, PruneControl, RepairControl, RestoreControl, SnapshotRequest,
    VerifyControl,
};

pub fn parse_instance(text: &str) -> Result<InstanceRequest> {
    let words = parse_words(text)?;
    let verb = words.verb.clone();
    let mut f = Fields::new(words);
    let req = match verb.as_deref() {
        Some("add") => {
            let name = instance_name(f.required("name")?)?;
            if !is_valid_new_name(&name) {
                return Err(ControlError::invalid(format!(
                    "instance name `{name}` is {} bytes long: a new instance's name has at \
                     most {MAX_NEW_NAME_LEN}",
                    name.len()
                )));
            }
            let paths = f
                .all("path")
                .into_iter()
                .map(|p| absolute("path", p))
                .collect::<Result<Vec<_>>>()?;
            let commands = command_sources(&mut f, &paths)?;
            if !paths.is_empty() {
                check_source_paths(&paths).map_err(ControlError::invalid)?;
            }
            let excludes = globs("exclude", f.all("exclude"))?;
            let hooks = hooks(&mut f)?;
            let logs = log_sources(&mut f)?;
            f.finish(
                "name, path, exclude, command, as, before, after, restore-before, \
                 restore-after, hook-timeout, log, log-every, log-pushers",
            )?;
            InstanceRequest::Add {
                name,
                paths,
                excludes,
                hooks,
                commands,
                logs: Box::new(logs),
            }
        }
        Some("remove") => {
            let name = instance_name(f.required("name")?)?;
            f.finish("name")?;
            InstanceRequest::Remove { name }
        }
        Some(other) => {
            return Err(ControlError::invalid(format!(
                "unknown verb `{other}` (add, remove)"
            )))
        }
        None => {
            return Err(ControlError::invalid(
                "start with a verb: `add name=.. path=..` or `remove name=..`",
            ))
        }
    };
    Ok(req)
}

/// The most a hook may be given to run: a day.
pub const MAX_HOOK_TIMEOUT_SECS: u64 = 86_400;

/// The hook keys of `add`: each a command for `/bin/sh -c`, and their timeout.
fn hooks(f: &mut Fields) -> Result<Hooks> {
    let mut command = |key: &str| -> Result<Option<String>> {
        match f.optional(key)? {
            Some(c) if c.trim().is_empty() => Err(ControlError::invalid(format!(
                "`{key}=` needs a command (for /bin/sh -c)"
            ))),
            Some(c) if c.contains('\0') => Err(ControlError::invalid(format!(
                "`{key}=` must not contain NUL"
            ))),
            other => Ok(other),
        }
    };
    let mut hooks = Hooks {
        before: command("before")?,
        after: command("after")?,
        restore_before: command("restore-before")?,
        restore_after: command("restore-after")?,
        timeout_secs: None,
    };
    if let Some(t) = f.optional("hook-timeout")? {
        let secs = t
            .parse::<u64>()
            .ok()
            .filter(|s| (1..=MAX_HOOK_TIMEOUT_SECS).contains(s))
            .ok_or_else(|| {
                ControlError::invalid(format!(
                    "hook-timeout must be whole seconds from 1 to {MAX_HOOK_TIMEOUT_SECS}, got `{t}`"
                ))
            })?;
        if hooks.is_empty() {
            return Err(ControlError::invalid(
                "hook-timeout= applies to hooks: give before=, after=, restore-before= or \
                 restore-after= too",
            ));
        }
        hooks.timeout_secs = Some(secs);
    }
    Ok(hooks)
}

/// `command=CMD as=NAME` pairs, in order: each command needs its own `as=`, and the
/// names follow the stream-name rules beside the paths.
fn command_sources(f: &mut Fields, paths: &[std::path::PathBuf]) -> Result<Vec<CommandSource>> {
    let (commands, names) = (f.all("command"), f.all("as"));
    if commands.len() != names.len() {
        return Err(ControlError::invalid(format!(
            "{} `command=` and {} `as=`: give each command the file name of its output \
             (`command=CMD as=NAME`, repeat the pair for several)",
            commands.len(),
            names.len()
        )));
    }
    if let Some(c) = commands.iter().find(|c| c.trim().is_empty()) {
        return Err(ControlError::invalid(format!("empty command `{c}`")));
    }
    check_stream_names(names.iter().map(String::as_str), paths).map_err(ControlError::invalid)?;
    Ok(commands
        .into_iter()
        .zip(names)
        .map(|(command, name)| CommandSource { command, name })
        .collect())
}

pub fn parse_snapshot(text: &str) -> Result<SnapshotRequest> {
    let words = parse_words(text)?;
    no_verb(&words, "snapshot")?;
    let mut f = Fields::new(words);
    let instance = instance_name(f.required("instance")?)?;
    let label = f.optional("name")?;
    if let Some(l) = &label {
        if !is_valid_label(l) {
            return Err(ControlError::invalid(format!(
                "invalid point label `{l}`: 1-64 of A-Z a-z 0-9 _ -, not `auto` or \
                 `before-restore` (reserved, also with a `-N` suffix)"
            )));
        }
    }
    let stdin = f.optional("stdin")?;
    if let Some(name) = &stdin {
        check_stream_names([name.as_str()], &[]).map_err(ControlError::invalid)?;
    }
    f.finish("instance, name, stdin")?;
    Ok(SnapshotRequest {
        instance,
        label,
        schedule: None,
        stdin,
    })
}

pub fn parse_restore(text: &str) -> Result<RestoreControl> {
    let words = parse_words(text)?;
    no_verb(&words, "restore")?;
    let mut f = Fields::new(words);
    let instance = instance_name(f.required("instance")?)?;
    let at = f.optional("at")?;
    let point = match (f.optional("point")?, &at) {
        (Some(_), Some(_)) => {
            return Err(ControlError::invalid(
                "`at=` restores the state at a time and `point=` a point: give one of them",
            ))
        }
        (Some(p), None) => point_ref(p)?,
        (None, Some(_)) => String::new(),
        (None, None) => return Err(ControlError::invalid("missing `point=` (or `at=TIME`)")),
    };
    let at_ns = at
        .map(|t| parse_pitr_time(&t).map_err(ControlError::invalid))
        .transpose()?;
    let target = f
        .optional("target")?
        .map(|t| absolute("target", t))
        .transpose()?;
    let includes = globs("include", f.all("include"))?;
    let in_place = match f.optional("mode")?.as_deref() {
        None | Some("new") => false,
        Some("in-place") => true,
        Some(m) => {
            return Err(ControlError::invalid(format!(
                "mode must be `new` or `in-place`, got `{m}`"
            )))
        }
    };
    if !in_place && target.is_none() {
        return Err(ControlError::invalid(
            "mode=new needs `target=/absolute/path`",
        ));
    }
    let delete_excluded = boolean("delete-excluded", f.optional("delete-excluded")?)?;
    if delete_excluded && !in_place {
        return Err(ControlError::invalid(
            "delete-excluded=true applies to mode=in-place only",
        ));
    }
    let skip_damaged = boolean("skip-damaged", f.optional("skip-damaged")?)?;
    f.finish("instance, point, at, target, include, mode, delete-excluded, skip-damaged")?;
    if at_ns.is_some() && (in_place || !includes.is_empty() || skip_damaged) {
        return Err(ControlError::invalid(
            "`at=` restores the whole instance into a new `target=`: no mode=in-place, \
             include= or skip-damaged=",
        ));
    }
    Ok(RestoreControl {
        instance,
        point,
        at_ns,
        target,
        includes,
        in_place,
        delete_excluded,
        skip_damaged,
    })
}

pub fn parse_verify(text: &str) -> Result<VerifyControl> {
    // Every key is optional: an empty line verifies everything.
    let words = if text.trim().is_empty() {
        Words::default()
    } else {
        parse_words(text)?
    };
    no_verb(&words, "verify")?;
    let mut f = Fields::new(words);
    let instance = f.optional("instance")?.map(instance_name).transpose()?;
    let point = f.optional("point")?.map(point_ref).transpose()?;
    if point.is_some() && instance.is_none() {
        return Err(ControlError::invalid("`point=` needs `instance=`"));
    }
    let read_data = boolean("read-data", f.optional("read-data")?)?;
    f.finish("instance, point, read-data")?;
    Ok(VerifyControl {
        instance,
        point,
        read_data,
    })
}

pub fn parse_forget(text: &str) -> Result<ForgetControl> {
    let words = parse_words(text)?;
    no_verb(&words, "forget")?;
    let mut f = Fields::new(words);
    let instance = instance_name(f.required("instance")?)?;
    let points = f
        .all("point")
        .into_iter()
        .map(point_ref)
        .collect::<Result<Vec<_>>>()?;
    if points.is_empty() {
        return Err(ControlError::invalid(
            "missing `point=` (a point name or `latest`; repeat for several)",
        ));
    }
    let manual = boolean("manual", f.optional("manual")?)?;
    f.finish("instance, point, manual")?;
    Ok(ForgetControl {
        instance,
        points,
        manual,
    })
}

/// The longest grace period `ctl/prune` accepts: a year.
const MAX_GRACE_HOURS: u32 = 24 * 366;

pub fn parse_prune(text: &str) -> Result<PruneControl> {
    let words = if text.trim().is_empty() {
        Words::default()
    } else {
        parse_words(text)?
    };
    no_verb(&words, "prune")?;
    let mut f = Fields::new(words);
    let dry_run = boolean("dry-run", f.optional("dry-run")?)?;
    let grace_hours = f
        .optional("grace-hours")?
        .map(|v| match v.parse::<u32>() {
            Ok(h) if h <= MAX_GRACE_HOURS => Ok(h),
            _ => Err(ControlError::invalid(format!(
                "grace-hours must be 0..={MAX_GRACE_HOURS}, got `{v}`"
            ))),
        })
        .transpose()?;
    let break_lease = boolean("break-lease", f.optional("break-lease")?)?;
    f.finish("dry-run, grace-hours, break-lease")?;
    Ok(PruneControl {
        dry_run,
        grace_hours,
        break_lease,
    })
}

pub fn parse_repair(text: &str) -> Result<RepairControl> {
    let words = if text.trim().is_empty() {
        Words::default()
    } else {
        parse_words(text)?
    };
    no_verb(&words, "repair")?;
    let mut f = Fields::new(words);
    let dry_run = boolean("dry-run", f.optional("dry-run")?)?;
    f.finish("dry-run")?;
    Ok(RepairControl { dry_run })
}

/// `ctl/cancel`.
/// `end job=ID [bytes=N]` in `ctl/stdin`.
pub fn parse_stdin_end(text: &str) -> Result<(u64, Option<u64>)> {
    let words = parse_words(text)?;
    if words.verb.as_deref() != Some("end") {
        return Err(ControlError::invalid(
            "ctl/stdin takes `end job=ID [bytes=N]` after the job's input was written",
        ));
    }
    let mut f = Fields::new(words);
    let job = f.required("job")?;
    let bytes = f.optional("bytes")?;
    f.finish("job, bytes")?;
    let number = |key: &str, v: &str| {
        v.parse::<u64>()
            .map_err(|_| ControlError::invalid(format!("{key}= must be a number, got `{v}`")))
    };
    Ok((
        number("job", &job)?,
        bytes.map(|b| number("bytes", &b)).transpose()?,
    ))
}

pub fn parse_cancel(text: &str) -> Result<u64> {
    let words = parse_words(text)?;
    no_verb(&words, "cancel")?;
    let mut f = Fields::new(words);
    let job = f.required("job")?;
    f.finish("job")?;
    job.parse()
        .map_err(|_| ControlError::invalid(format!("job must be a job number, got `{job}`")))
}

#[cfg(test)]
mod tests;
